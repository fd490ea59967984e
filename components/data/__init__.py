"""Raw CIC-IDS2017 files to curated parquet: contract, inputs and readers, casting, validation, ingest."""
