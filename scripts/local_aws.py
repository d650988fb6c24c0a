"""Helpers for the local stack: create the table and keys in moto, sign a body, scan the table.

  local_aws.py bootstrap ENDPOINT TABLE CREDS_SECRET CREDS_JSON BUCKET KEYS_SECRET
                                                     create the table, the credentials secret, the
                                                     quarantine bucket and the signing-keys secret (its field hash key)
  local_aws.py key ENDPOINT KEYS_SECRET COLLECTION   print a collection's signing key
  local_aws.py sign KEY BODY                         print the Authorization header for BODY
  local_aws.py scan ENDPOINT TABLE                   print every item as JSON lines
  local_aws.py quarantine ENDPOINT BUCKET            print every quarantined object: key, metadata, body
  local_aws.py feed-setup ENDPOINT BUS QUEUE         create the change bus, a rule for its events and
                                                     the queue the rule sends them to
  local_aws.py pump ENDPOINT TABLE INVOKE_URL        read the table's stream as Lambda's event source
                                                     mapping does and invoke the publisher with each
                                                     batch (runs until killed)
  local_aws.py feed ENDPOINT QUEUE KEPT [N] [ID]     move the queue's change events into KEPT (JSON lines)
                                                     and print the last N (20) (of record ID)
"""

import base64
import hashlib
import hmac
import json
import secrets as secrets_module
import string
import sys
import time
import urllib.request

def client(service, endpoint):
    import boto3  # installed with moto

    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="local", aws_secret_access_key="local",
    )


def bootstrap(endpoint, table, credentials_secret, credentials_json, bucket, keys_secret):
    dynamodb = client("dynamodb", endpoint)
    if table not in dynamodb.list_tables()["TableNames"]:
        # As template.yaml's RecordTable: the key, and the two read indexes.
        projection = {"ProjectionType": "ALL"}
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"}
                for name in ("pk", "byDatePartition", "byDateSort", "byPersonPartition")
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": name,
                    "KeySchema": [
                        {"AttributeName": partition, "KeyType": "HASH"},
                        {"AttributeName": "byDateSort", "KeyType": "RANGE"},
                    ],
                    "Projection": projection,
                }
                for name, partition in (("byDate", "byDatePartition"), ("byPerson", "byPersonPartition"))
            ],
            # As the template: the publisher's source.
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
    # As the template: tombstones expire (TombstoneRetentionDays); a table of an earlier local
    # stack gets it too.
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        dynamodb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
        )
    secrets = client("secretsmanager", endpoint)
    try:
        secrets.put_secret_value(SecretId=credentials_secret, SecretString=credentials_json)
    except secrets.exceptions.ResourceNotFoundException:
        secrets.create_secret(Name=credentials_secret, SecretString=credentials_json)
    # As the template's SigningKeysSecret: created with only the field hash key (64 random
    # letters and digits), the renewer writes every signing key into it.
    hash_key = "".join(secrets_module.choice(string.ascii_letters + string.digits) for _ in range(64))
    try:
        secrets.create_secret(Name=keys_secret, SecretString=json.dumps({"fieldHashKey": hash_key}))
    except secrets.exceptions.ResourceExistsException:
        pass
    s3 = client("s3", endpoint)
    if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=bucket)


def quarantine(endpoint, bucket):
    s3 = client("s3", endpoint)
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=entry["Key"])
            body = got["Body"].read().decode("utf-8", errors="replace")
            print(json.dumps({"key": entry["Key"], "metadata": got.get("Metadata", {}), "body": body}))


def key(endpoint, secret_id, collection):
    """The collection's key in the signing-keys secret ({"<collection>": {"key": ...}, ...})."""
    secrets = client("secretsmanager", endpoint)
    document = json.loads(secrets.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"])
    if collection not in document:
        sys.exit(f"no signing key for {collection} in {secret_id} yet (the renewer stores it)")
    print(document[collection]["key"])


def sign(key, body):
    digest = hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()
    return "HMAC-SHA256 " + base64.b64encode(digest).decode()


def scan(endpoint, table):
    from boto3.dynamodb.types import TypeDeserializer

    plain = TypeDeserializer()
    paginator = client("dynamodb", endpoint).get_paginator("scan")
    for page in paginator.paginate(TableName=table):
        for item in page["Items"]:
            print(json.dumps({k: plain.deserialize(v) for k, v in sorted(item.items())}, default=str))


def feed_setup(endpoint, bus, queue):
    events, sqs = client("events", endpoint), client("sqs", endpoint)
    if bus not in [b["Name"] for b in events.list_event_buses()["EventBuses"]]:
        events.create_event_bus(Name=bus)
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all-changes", EventBusName=bus, EventPattern=json.dumps({"source": ["protime-webhooks"]}))
    events.put_targets(Rule="all-changes", EventBusName=bus, Targets=[{"Id": "feed", "Arn": arn}])


def _wire_bytes(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def pump(endpoint, table, invoke_url):
    """Lambda's event source mapping, locally: batches of up to 100 records per shard, in order;
    a reported batch item failure makes the next batch start at that record."""
    dynamodb, streams = client("dynamodb", endpoint), client("dynamodbstreams", endpoint)
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    positions = {}
    while True:
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id not in positions:
                positions[shard_id] = streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            answer = streams.get_records(ShardIterator=positions[shard_id], Limit=100)
            records = answer["Records"]
            if not records:
                positions[shard_id] = answer.get("NextShardIterator", positions[shard_id])
                continue
            for record in records:  # the wire's JSON, as Lambda delivers it
                change = record["dynamodb"]
                change["ApproximateCreationDateTime"] = change["ApproximateCreationDateTime"].timestamp()
                change["SizeBytes"] = change.get("SizeBytes", 0)
                record["eventSourceARN"] = arn
            # Binary attributes (a pass's saved ids) as Lambda delivers them: base64 text.
            body = json.dumps({"Records": records}, default=_wire_bytes).encode()
            request = urllib.request.Request(invoke_url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    failures = json.load(response).get("batchItemFailures", [])
            except Exception as error:  # the publisher is down or still building: retry the batch
                print(f"invoking the publisher failed ({error}); the batch is retried", flush=True)
                time.sleep(2)
                continue
            if failures:
                sequence = failures[0]["itemIdentifier"]
                print(f"batch item failure: resuming at {sequence}", flush=True)
                positions[shard_id] = streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
                    SequenceNumber=sequence)["ShardIterator"]
            else:
                positions[shard_id] = answer["NextShardIterator"]
                print(f"published a batch of {len(records)} stream records", flush=True)
        time.sleep(1)


def feed(endpoint, queue, kept, count="20", record_id=""):
    """Moves what the consumer's queue received into KEPT (JSON lines, oldest first), then prints
    the last COUNT events kept (only RECORD_ID's, waiting up to 60 s for the first)."""
    sqs = client("sqs", endpoint)
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    deadline = time.time() + (60 if record_id else 0)
    while True:
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
            if not messages:
                break
            with open(kept, "a") as out:
                for message in messages:
                    out.write(json.dumps(json.loads(message["Body"])) + "\n")
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        try:
            with open(kept) as lines:
                events = [json.loads(line) for line in lines if line.strip()]
        except FileNotFoundError:
            events = []
        events = [e for e in events if not record_id or str(e["detail"].get("id")) == record_id]
        if events or time.time() >= deadline:
            break
        time.sleep(1)
    for event in events[-int(count):]:
        print(json.dumps({"detail-type": event["detail-type"], "time": event.get("time"), **event["detail"]}))
    what = f" for record {record_id}" if record_id else ""
    print(f"{len(events)} event{'' if len(events) == 1 else 's'}{what}")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "bootstrap":
        bootstrap(*args)
    elif command == "key":
        key(*args)
    elif command == "sign":
        print(sign(*args))
    elif command == "scan":
        scan(*args)
    elif command == "quarantine":
        quarantine(*args)
    elif command == "feed-setup":
        feed_setup(*args)
    elif command == "pump":
        pump(*args)
    elif command == "feed":
        feed(*args)
    else:
        sys.exit(__doc__)
