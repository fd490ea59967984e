"""File order is capture order (day, part, attack), never the alphabet; a guess says so."""
from __future__ import annotations

import datetime as dt

from components.data.capture_order import GIVEN, NAME, TIMESTAMP, order_files

PUBLISHED = [  # the eight MachineLearningCVE / TrafficLabelling day files, in capture order
    "Monday-WorkingHours.pcap_ISCX.csv",
    "Tuesday-WorkingHours.pcap_ISCX.csv",
    "Wednesday-workingHours.pcap_ISCX.csv",
    "Thursday-WorkingHours-Morning-WebAttacks.pcap_ISCX.csv",
    "Thursday-WorkingHours-Afternoon-Infilteration.pcap_ISCX.csv",
    "Friday-WorkingHours-Morning.pcap_ISCX.csv",
    "Friday-WorkingHours-Afternoon-PortScan.pcap_ISCX.csv",
    "Friday-WorkingHours-Afternoon-DDos.pcap_ISCX.csv",
]


def test_published_day_files_in_capture_order_whatever_the_input_order():
    for given in (sorted(PUBLISHED), list(reversed(PUBLISHED))):
        order = order_files(given)
        assert order.files == PUBLISHED
        assert (order.method, order.guessed, order.warning()) == (NAME, False, None)
    assert sorted(PUBLISHED) != PUBLISHED  # the alphabet would put Friday first


def test_parquet_rerelease_names():
    rerelease = ["Benign-Monday-no-metadata.parquet", "Bruteforce-Tuesday-no-metadata.parquet",
                 "DoS-Wednesday-no-metadata.parquet", "WebAttacks-Thursday-no-metadata.parquet",
                 "Infiltration-Thursday-no-metadata.parquet", "Botnet-Friday-no-metadata.parquet",
                 "Portscan-Friday-no-metadata.parquet", "DDoS-Friday-no-metadata.parquet"]
    assert order_files(sorted(rerelease)).files == rerelease


def test_first_timestamps_when_names_say_nothing():
    names = ["b.csv", "a.csv"]
    stamps = {"a.csv": dt.datetime(2024, 5, 2, 9), "b.csv": dt.datetime(2024, 5, 1, 23)}
    order = order_files(names, stamps)
    assert (order.files, order.method, order.guessed) == (["b.csv", "a.csv"], TIMESTAMP, False)
    assert order_files(["a.csv", "b.csv"], stamps).files == ["b.csv", "a.csv"]


def test_otherwise_the_given_order_is_kept_and_called_a_guess():
    names = ["zeta.csv", "alpha.csv", "Monday-WorkingHours.pcap_ISCX.csv"]
    order = order_files(names, {"zeta.csv": dt.datetime(2024, 1, 1), "alpha.csv": None})
    assert (order.files, order.method, order.guessed) == (names, GIVEN, True)
    assert "file order is a guess" in order.warning()
    assert order.to_dict()["keys"]["Monday-WorkingHours.pcap_ISCX.csv"] == "monday day"
