"""Creates roomcast's Kafka topic if it is missing, speaking the Kafka protocol itself
(Python's standard library and botocore only, both in Lambda's Python runtime).

Two ways in:

* As the CloudFormation custom resource of infra/msk-serverless.yaml (`handler`): it looks
  up the MSK cluster's SASL/IAM bootstrap brokers, signs in with the function role (SASL
  OAUTHBEARER with a SigV4-presigned token, as AWS's MSK signer libraries do), creates
  the topic, and returns the bootstrap string for the stack's outputs. MSK Serverless has
  no CloudFormation resource or AWS API for topics, and no automatic topic creation.

* From a shell that can reach the brokers:

      python3 infra/topic/topic.py --bootstrap HOST:PORT[,...] [--topic roomcast-events]
          [--partitions 3] [--replication-factor -1] [--msk-iam REGION]

  plaintext without --msk-iam (what the tests do against a local broker).

Requests use the protocol's non-flexible versions, which every broker since Kafka 2.4
answers: Metadata v1 (to find the controller), SaslHandshake v1 and SaslAuthenticate v1,
CreateTopics v4 (whose replication factor -1 means the broker's default; MSK Serverless
fixes it at 3 anyway). An existing topic is left as it is.
"""

import argparse
import base64
import json
import os
import socket
import ssl
import struct
import sys
import urllib.request

CLIENT_ID = "roomcast-topic"
TIMEOUT_SECONDS = 10.0

API_METADATA = 3
API_SASL_HANDSHAKE = 17
API_CREATE_TOPICS = 19
API_SASL_AUTHENTICATE = 36

ERROR_NONE = 0
ERROR_TOPIC_ALREADY_EXISTS = 36
ERROR_NOT_CONTROLLER = 41


class KafkaError(Exception):
    pass


# --- Encoding -------------------------------------------------------------------------------


def _string(value):
    data = value.encode("utf-8")
    return struct.pack(">h", len(data)) + data


def _bytes(value):
    return struct.pack(">i", len(value)) + value


class _Reader:
    def __init__(self, data):
        self.data = data
        self.offset = 0

    def _take(self, size):
        if self.offset + size > len(self.data):
            raise KafkaError("truncated response from the broker")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def int8(self):
        return struct.unpack(">b", self._take(1))[0]

    def int16(self):
        return struct.unpack(">h", self._take(2))[0]

    def int32(self):
        return struct.unpack(">i", self._take(4))[0]

    def int64(self):
        return struct.unpack(">q", self._take(8))[0]

    def string(self):
        size = self.int16()
        return None if size < 0 else self._take(size).decode("utf-8")

    def bytes(self):
        size = self.int32()
        return None if size < 0 else self._take(size)


# --- One broker connection --------------------------------------------------------------------


class Connection:
    """A connection to one broker: TLS or not, signed in with OAUTHBEARER or not."""

    def __init__(self, host, port, use_tls, token_source=None):
        self.host, self.port = host, port
        raw = socket.create_connection((host, port), timeout=TIMEOUT_SECONDS)
        if use_tls:
            raw = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        self.sock = raw
        self.correlation_id = 0
        if token_source is not None:
            self._sign_in(token_source())

    def close(self):
        self.sock.close()

    def _receive_exactly(self, size):
        chunks = []
        while size:
            chunk = self.sock.recv(size)
            if not chunk:
                raise KafkaError(f"{self.host}:{self.port} closed the connection")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def request(self, api_key, api_version, body):
        self.correlation_id += 1
        header = struct.pack(">hhi", api_key, api_version, self.correlation_id) + _string(CLIENT_ID)
        message = header + body
        self.sock.sendall(struct.pack(">i", len(message)) + message)
        (size,) = struct.unpack(">i", self._receive_exactly(4))
        reader = _Reader(self._receive_exactly(size))
        if reader.int32() != self.correlation_id:
            raise KafkaError("the broker answered another request")
        return reader

    def _sign_in(self, token):
        reader = self.request(API_SASL_HANDSHAKE, 1, _string("OAUTHBEARER"))
        error = reader.int16()
        if error != ERROR_NONE:
            mechanisms = [reader.string() for _ in range(reader.int32())]
            raise KafkaError(f"the broker refuses OAUTHBEARER (error {error}; it offers {mechanisms})")
        # RFC 7628's client first message: no authorization id, the bearer token.
        first = b"n,,\x01auth=Bearer " + token.encode("ascii") + b"\x01\x01"
        reader = self.request(API_SASL_AUTHENTICATE, 1, _bytes(first))
        error, message = reader.int16(), reader.string()
        if error != ERROR_NONE:
            raise KafkaError(f"sign-in refused (error {error}): {message}")


def _parse_servers(bootstrap):
    servers = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise KafkaError(f"bad bootstrap server {server!r}: expected host:port")
        servers.append((host, int(port)))
    return servers


def _connect_any(servers, use_tls, token_source):
    failures = []
    for host, port in servers:
        try:
            return Connection(host, port, use_tls, token_source)
        except (OSError, KafkaError) as error:
            failures.append(f"{host}:{port}: {error}")
    raise KafkaError("no bootstrap server answered: " + "; ".join(failures))


def _metadata(connection):
    """The brokers ({node_id: (host, port)}) and the controller's id (Metadata v1, no topics)."""
    reader = connection.request(API_METADATA, 1, struct.pack(">i", 0))
    brokers = {}
    for _ in range(reader.int32()):
        node_id, host, port = reader.int32(), reader.string(), reader.int32()
        reader.string()  # rack
        brokers[node_id] = (host, port)
    return brokers, reader.int32()


def _create_topics_request(topic, partitions, replication_factor):
    body = struct.pack(">i", 1)  # one topic
    body += _string(topic) + struct.pack(">ih", partitions, replication_factor)
    body += struct.pack(">i", 0)  # no manual assignments
    body += struct.pack(">i", 0)  # no configs
    body += struct.pack(">i?", int(TIMEOUT_SECONDS * 1000), False)  # timeout, validate_only
    return body


def ensure_topic(bootstrap, topic, partitions=3, replication_factor=-1, use_tls=False, token_source=None):
    """Creates `topic` unless it exists. Returns "created" or "exists"."""
    servers = _parse_servers(bootstrap)
    connection = _connect_any(servers, use_tls, token_source)
    try:
        for _ in range(3):
            brokers, controller = _metadata(connection)
            if controller in brokers and brokers[controller] != (connection.host, connection.port):
                host, port = brokers[controller]
                connection.close()
                connection = Connection(host, port, use_tls, token_source)
            reader = connection.request(
                API_CREATE_TOPICS, 4, _create_topics_request(topic, partitions, replication_factor)
            )
            reader.int32()  # throttle_time_ms
            results = []
            for _ in range(reader.int32()):
                results.append((reader.string(), reader.int16(), reader.string()))
            for name, error, message in results:
                if name != topic:
                    continue
                if error == ERROR_NONE:
                    return "created"
                if error == ERROR_TOPIC_ALREADY_EXISTS:
                    return "exists"
                if error == ERROR_NOT_CONTROLLER:
                    break  # the controller moved: ask again
                raise KafkaError(f"cannot create topic {topic} (error {error}): {message}")
            else:
                raise KafkaError(f"the broker did not answer for topic {topic}")
        raise KafkaError(f"cannot find the controller to create topic {topic}")
    finally:
        connection.close()


# --- MSK IAM ----------------------------------------------------------------------------------


def msk_iam_token_source(region):
    """A function making MSK IAM tokens with the default credential chain (in Lambda, the
    function role): https://kafka.{region}.amazonaws.com/?Action=kafka-cluster:Connect
    presigned with SigV4 for 900 s, plus User-Agent, base64url without padding."""
    import botocore.session
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    session = botocore.session.get_session()

    def token():
        credentials = session.get_credentials()
        if credentials is None:
            raise KafkaError("no AWS credentials for the MSK IAM token")
        request = AWSRequest(
            method="GET",
            url=f"https://kafka.{region}.amazonaws.com/",
            params={"Action": "kafka-cluster:Connect"},
        )
        SigV4QueryAuth(credentials.get_frozen_credentials(), "kafka-cluster", region, expires=900).add_auth(request)
        signed = f"{request.url}&User-Agent={CLIENT_ID}"
        return base64.urlsafe_b64encode(signed.encode("utf-8")).decode("ascii").rstrip("=")

    return token


# --- CloudFormation custom resource ------------------------------------------------------------


def _respond(event, context, status, reason, data=None):
    body = json.dumps(
        {
            "Status": status,
            "Reason": f"{reason} (log stream {getattr(context, 'log_stream_name', '?')})",
            "PhysicalResourceId": event.get("PhysicalResourceId") or event["ResourceProperties"]["Topic"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data or {},
        }
    ).encode("utf-8")
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT")
    request.add_header("Content-Type", "")
    request.add_header("Content-Length", str(len(body)))
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        response.read()


def handler(event, context):
    """Create and Update ensure the topic (an existing one is kept as it is, so changing
    the partition count later does nothing); Delete leaves it: it goes with the cluster."""
    print(json.dumps({key: value for key, value in event.items() if key != "ResponseURL"}))
    properties = event["ResourceProperties"]
    if event["RequestType"] == "Delete":
        # Nothing to undo, and nothing that may fail: a failed delete would stick the stack.
        _respond(event, context, "SUCCESS", "the topic goes with the cluster")
        return
    try:
        import boto3

        region = os.environ["AWS_REGION"]
        brokers = boto3.client("kafka").get_bootstrap_brokers(ClusterArn=properties["ClusterArn"])
        bootstrap = brokers["BootstrapBrokerStringSaslIam"]
        data = {"BootstrapServers": bootstrap}
        outcome = ensure_topic(
            bootstrap,
            properties["Topic"],
            partitions=int(properties.get("Partitions", 3)),
            replication_factor=int(properties.get("ReplicationFactor", -1)),
            use_tls=True,
            token_source=msk_iam_token_source(region),
        )
        print(f"topic {properties['Topic']}: {outcome}")
        _respond(event, context, "SUCCESS", "ok", data)
    except Exception as error:  # every failure must reach CloudFormation, or it waits an hour
        print(f"failed: {error!r}")
        _respond(event, context, "FAILED", str(error)[:500])


def main(argv):
    parser = argparse.ArgumentParser(description="Create roomcast's Kafka topic if it is missing.")
    parser.add_argument("--bootstrap", required=True, help="host:port[,host:port...]")
    parser.add_argument("--topic", default="roomcast-events")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--replication-factor", type=int, default=-1, help="-1: the broker's default")
    parser.add_argument("--tls", action="store_true", help="TLS to the brokers (implied by --msk-iam)")
    parser.add_argument("--msk-iam", metavar="REGION", help="sign in to MSK with IAM for this region")
    args = parser.parse_args(argv)
    token_source = msk_iam_token_source(args.msk_iam) if args.msk_iam else None
    try:
        outcome = ensure_topic(
            args.bootstrap,
            args.topic,
            partitions=args.partitions,
            replication_factor=args.replication_factor,
            use_tls=args.tls or bool(args.msk_iam),
            token_source=token_source,
        )
    except (OSError, KafkaError) as error:
        print(f"topic.py: {error}", file=sys.stderr)
        return 1
    print(f"{args.topic}: {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
