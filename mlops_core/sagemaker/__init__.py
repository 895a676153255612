"""SageMaker in plain boto3: jobs (``jobs``), models and endpoints (``endpoints``), the model registry
(``registry``) and data capture (``capture``)."""
