"""bin/local-aws: AWS on 127.0.0.1 for any client, in the foreground, until Ctrl-C.

moto plays the AWS control plane; SageMaker processing and training jobs, endpoints and InvokeEndpoint
run here (the model container's entry points as processes, SageMaker's /opt/ml layout, data capture to
S3). The first line printed is AWS_ENDPOINT_URL=...: export it (with any dummy credentials and a region)
and point boto3, the AWS CLI or any SDK at it. Ctrl-C stops every process it started.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from mlops_core.local.embedded import EmbeddedAws


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/local-aws", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--region", default="us-east-1", help="the region clients use (default us-east-1)")
    p.add_argument("--state", type=Path,
                   help="keep the account and the runtime's records in this folder; the next start continues it "
                        "(default: a temporary folder, removed on exit)")
    p.add_argument("--engine", choices=["process", "container"], default="process",
                   help="run jobs and endpoints as processes (default) or in their images under Podman")
    p.add_argument("--container", type=Path,
                   help="the app.py jobs and endpoints run (default: this repository's model_container/app.py)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.container and not args.container.is_file():
        print(f"configuration error: --container {args.container} is not a file", file=sys.stderr)
        return 2
    recording = args.state / "moto-recording.jsonl" if args.state else None
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with EmbeddedAws(region=args.region, port=args.port, recording=recording, state_dir=args.state,
                     container=args.container, engine=args.engine) as aws:
        print(f"AWS_ENDPOINT_URL={aws.endpoint_url}", flush=True)
        print(f"# export AWS_ENDPOINT_URL={aws.endpoint_url} AWS_REGION={args.region} "
              "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing", flush=True)
        print("# Ctrl-C stops the gateway and every job and endpoint process it started", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
