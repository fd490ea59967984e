"""Raw CIC-IDS2017 files to curated parquet: contract, readers, casting, validation, ingest."""
