"""The abalone model image: preprocess | train | evaluate | serve on SageMaker's container contract."""
