# Runs when an order's status changes: reads the DynamoDB-Streams record exactly as Lambda
# delivers it and logs the change.
def handler(event, context):
    for record in event["Records"]:
        keys = record["dynamodb"]["Keys"]
        old = record["dynamodb"].get("OldImage", {}).get("status", {}).get("S")
        new = record["dynamodb"]["NewImage"]["status"]["S"]
        print("order %s: %s -> %s" % (keys["id"]["N"], old, new))
    return {"changes": len(event["Records"])}
