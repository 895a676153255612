"""The embedded AWS (needs the ``local`` extra): one gateway on 127.0.0.1 in front of moto's server whose
SageMaker jobs, endpoints and InvokeEndpoint run on this machine (``EmbeddedAws``, ``bin/local-aws``).

It plugs in from above: the foundation's client factory knows nothing of it, clients only see
``AWS_ENDPOINT_URL``.
"""
