"""Train models from declarative configs and publish them to the model repository (``python -m training``)."""
