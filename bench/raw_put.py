"""A raw uploader for the server's ceiling: awscrt's native S3 client with every file in flight at once (up to
``--concurrency``), no checksum, no metadata, no tags, no listing, no index — what the S3 server can take at all.

Prints one JSON line: the seconds from the first request to the last response (the process's start and the walk
are left out, as the engine's pass timing leaves them out), files and bytes.
"""

import argparse
import json
import os
import sys
import threading
import time
from urllib.parse import quote, urlsplit

from awscrt import auth, http, io, s3

MIB = 1024 * 1024


def files_under(root: str) -> list[tuple[str, str, int]]:
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            found.append((path, os.path.relpath(path, root), os.path.getsize(path)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--root", required=True, help="folder to upload")
    parser.add_argument("--prefix", required=True, help="key prefix")
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--throughput-gbps", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checksum", choices=["none", "header", "trailer"], default="none")
    parser.add_argument("--like-engine", action="store_true", help="the engine's object metadata and tag as well")
    args = parser.parse_args()
    files = files_under(args.root)
    host = urlsplit(args.endpoint).netloc
    elg = io.EventLoopGroup(args.threads)
    bootstrap = io.ClientBootstrap(elg, io.DefaultHostResolver(elg))
    credentials = auth.AwsCredentialsProvider.new_static(
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    )
    client = s3.S3Client(
        bootstrap=bootstrap,
        region="us-east-1",
        tls_mode=s3.S3RequestTlsMode.DISABLED,
        signing_config=s3.create_default_s3_signing_config(region="us-east-1", credential_provider=credentials),
        part_size=8 * MIB,
        multipart_upload_threshold=16 * MIB,
        throughput_target_gbps=args.throughput_gbps,
        memory_limit=1024 * MIB,
    )
    checksum = None
    if args.checksum != "none":
        location = s3.S3ChecksumLocation.HEADER if args.checksum == "header" else s3.S3ChecksumLocation.TRAILER
        checksum = s3.S3ChecksumConfig(algorithm=s3.S3ChecksumAlgorithm.CRC32C, location=location)
    slots = threading.Semaphore(args.concurrency)
    lock = threading.Lock()
    left = [len(files)]
    finished = threading.Event()
    failures: list[str] = []
    requests = []

    def on_done(error: BaseException | None = None, status_code: int | None = None, **_: object) -> None:
        if error is not None or (status_code or 200) >= 300:
            failures.append(f"{error} {status_code}")
        slots.release()
        with lock:
            left[0] -= 1
            if left[0] == 0:
                finished.set()

    started = time.perf_counter()
    for path, key, size in files:
        slots.acquire()
        pairs = [("Host", host), ("Content-Length", str(size))]
        if args.like_engine:
            pairs += [(f"x-amz-meta-file-{name}", "1764070000000000000ns") for name in ("mtime", "atime", "ctime")]
            pairs += [("x-amz-meta-file-owner", "0"), ("x-amz-meta-file-group", "0")]
            pairs += [("x-amz-meta-file-permissions", "0100644"), ("x-amz-tagging", "seqferry-class=run")]
        request = http.HttpRequest(
            "PUT", f"/{args.bucket}/{quote(args.prefix + '/' + key, safe='/')}", http.HttpHeaders(pairs)
        )
        requests.append(
            client.make_request(
                type=s3.S3RequestType.PUT_OBJECT,
                request=request,
                send_filepath=path,
                on_done=on_done,
                checksum_config=checksum,
            )
        )
    if files:
        finished.wait()
    seconds = time.perf_counter() - started
    if failures:
        sys.exit(f"{len(failures)} uploads failed, e.g. {failures[0]}")
    print(json.dumps({"seconds": seconds, "files": len(files), "bytes": sum(size for _, _, size in files)}), flush=True)
    requests.clear()
    shutdown = client.shutdown_event
    del client
    shutdown.wait(10)


if __name__ == "__main__":
    main()
