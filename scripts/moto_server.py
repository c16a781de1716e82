"""moto's server, with each DynamoDB and Kinesis request applied whole before the next.

moto's server handles requests on threads, but its backends are not thread-safe: two
concurrent BatchWriteItem calls that both write the first item of a partition key can each
create the key's item collection, and the later one replaces the earlier one with the items
already in it (reproduced with concurrent batches: now and then an item is missing afterwards);
a conditional write checks and writes in two steps. DynamoDB and Kinesis apply each write
atomically, which is what kinetick's lease, checkpoint and exactly-once tests rely on, so
requests to those two services take a lock per service here. The others (S3, SNS, SQS,
CloudWatch) stay concurrent; SQS long polls would block a lock.

Usage: moto_server.py HOST PORT
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

# The X-Amz-Target prefix of each service's JSON protocol.
SERIALIZED = {
    "DynamoDB_20120810": threading.Lock(),
    "Kinesis_20131202": threading.Lock(),
}


def serialized(app):
    def handle(environ, start_response):
        service = environ.get("HTTP_X_AMZ_TARGET", "").split(".", 1)[0]
        lock = SERIALIZED.get(service)
        if lock is None:
            return app(environ, start_response)
        with lock:
            # moto builds the whole response in the call; reading it here keeps it in the lock.
            return list(app(environ, start_response))

    return handle


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    # As moto's own entry point does: some services write their own address into responses.
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(
        host,
        port,
        serialized(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
