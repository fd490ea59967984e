"""What people read: MLflow run records, figures, the night report."""
