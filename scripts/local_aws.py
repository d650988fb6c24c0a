"""Helpers for the local stack: create the table and keys in moto, sign a body, scan the table.

  local_aws.py bootstrap ENDPOINT TABLE CREDS_SECRET CREDS_JSON BUCKET   create the table, the
                                                     credentials secret and the quarantine bucket
  local_aws.py key ENDPOINT SECRET_ID                print a secret's current value (a signing key)
  local_aws.py sign KEY BODY                         print the Authorization header for BODY
  local_aws.py scan ENDPOINT TABLE                   print every item as JSON lines
  local_aws.py quarantine ENDPOINT BUCKET            print every quarantined object: key, metadata, body
"""

import base64
import hashlib
import hmac
import json
import sys

def client(service, endpoint):
    import boto3  # installed with moto

    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="local", aws_secret_access_key="local",
    )


def bootstrap(endpoint, table, credentials_secret, credentials_json, bucket):
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
        )
    secrets = client("secretsmanager", endpoint)
    try:
        secrets.put_secret_value(SecretId=credentials_secret, SecretString=credentials_json)
    except secrets.exceptions.ResourceNotFoundException:
        secrets.create_secret(Name=credentials_secret, SecretString=credentials_json)
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


def key(endpoint, secret_id):
    secrets = client("secretsmanager", endpoint)
    print(secrets.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"])


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
    else:
        sys.exit(__doc__)
