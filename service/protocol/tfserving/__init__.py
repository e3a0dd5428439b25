"""TF Serving REST v1: predict, classify/regress examples, and the status and metadata documents."""
