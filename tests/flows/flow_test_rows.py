"""Names of the real CIC-IDS2017 excerpts and the tiny training options the flow tests share."""
BENIGN = "friday-afternoon-benign-head.MachineLearningCVE.csv"
DDOS = "friday-ddos-1000.TrafficLabelling.csv"
PORTSCAN = "friday-portscan-1000.TrafficLabelling.csv"
WEEK = "week-benign-sample.CICIDS2017_sample.csv"
#: every network and baseline in these tests: tiny, a few epochs, CPU
TINY = ["--epochs", "2", "--window", "8", "--stride", "4", "--hidden", "8", "--batch-size", "256",
        "--device", "cpu", "--seed", "0"]
