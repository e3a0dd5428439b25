"""The HTTP front door: one route table, the event-loop lane for model-running routes, Flask for the rest."""
