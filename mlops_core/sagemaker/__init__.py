"""SageMaker in plain boto3: jobs (``jobs``), models and endpoints (``endpoints``), the model registry
(``registry``), data capture (``capture``) and the release layout the bin/ scripts use (``release``)."""
