"""``python -m localkube.node --kubeconfig FILE --logs DIR``: run a local node as a process.

Prints ``node ready <instance id>`` on standard output once it serves, stops cleanly on SIGINT or
SIGTERM (exit 0). Logs are JSON lines on standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from kubernetes_asyncio import client, config

from localkube.node.agent import NodeSettings
from localkube.node.logs import FileLogs
from localkube.node.network import DEFAULT_ROOT, NetworkUnavailable
from localkube.node.node import LocalNode


async def _main(args: argparse.Namespace) -> int:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(args.kubeconfig), client_configuration=configuration
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with client.ApiClient(configuration) as api:
        node = LocalNode(
            api,
            logs=FileLogs(args.logs),
            settings=NodeSettings(node_name=args.node_name),
            root=args.root,
        )
        try:
            await node.start()
        except NetworkUnavailable as e:
            print(str(e), file=sys.stderr)
            return 1
        print(f"node ready {node.network.id}", flush=True)
        try:
            await stop.wait()
        finally:
            await node.stop()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m localkube.node")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--logs", type=Path, required=True)
    parser.add_argument("--node-name", default="localkube-node")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    sys.exit(asyncio.run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
