"""The Python peer of the receiver for scripts/bench_cpu.py: a plain boto3 Lambda handler doing
the same job — verify `Authorization: HMAC-SHA256 <base64>` over the raw body with the key from
Secrets Manager (cached), then one conditional PutItem that accepts only a newer changeVersion,
telling duplicate from stale with ALL_OLD — written as such a function usually is.
"""

import base64
import hashlib
import hmac
import json
import os

import boto3
from botocore.exceptions import ClientError

dynamodb = boto3.client("dynamodb")
secrets = boto3.client("secretsmanager")
TABLE = os.environ["TABLE_NAME"]
KEYS_SECRET = os.environ["SIGNING_KEYS_SECRET"]
_keys = {}


def key(collection):
    if not _keys:
        secret = secrets.get_secret_value(SecretId=KEYS_SECRET, VersionStage="AWSCURRENT")
        _keys.update({c: entry["key"].encode() for c, entry in json.loads(secret["SecretString"]).items()})
    return _keys[collection]


def answer(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def handler(event, context):
    collection = event["pathParameters"]["collection"]
    body = event["body"].encode()
    header = event["headers"].get("authorization", "")
    scheme, _, signature = header.partition(" ")
    expected = base64.b64encode(hmac.new(key(collection), body, hashlib.sha256).digest()).decode()
    if scheme.upper() != "HMAC-SHA256" or not hmac.compare_digest(signature.strip(), expected):
        return answer(401, {"error": {"code": "invalid_signature"}})
    record = json.loads(body)
    version = str(record["changeVersion"])
    order = version.rjust(64, "0")
    item = {k: {"S": str(v)} if not isinstance(v, dict) else {"S": json.dumps(v)} for k, v in record.items()}
    item.update({
        "pk": {"S": f"{collection}#{record['id']}"},
        "collection": {"S": collection},
        "changeVersion": {"S": version},
        "changeOrder": {"S": order},
        "deleted": {"BOOL": False},
    })
    try:
        dynamodb.put_item(
            TableName=TABLE,
            Item=item,
            ConditionExpression="attribute_not_exists(#pk) OR #order < :order",
            ExpressionAttributeNames={"#pk": "pk", "#order": "changeOrder"},
            ExpressionAttributeValues={":order": {"S": order}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        outcome = "stored"
    except ClientError as e:
        if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
            return answer(503, {"error": {"code": "store_unavailable"}})
        old = e.response.get("Item", {}).get("changeOrder", {}).get("S")
        outcome = "duplicate" if old == order else "stale"
    return answer(200, {"results": [{"id": str(record["id"]), "changeVersion": version, "outcome": outcome}]})
