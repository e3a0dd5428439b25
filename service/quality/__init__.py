"""Quality in production: remembered predictions and late labels, live figures, drift, gates, shadow."""
