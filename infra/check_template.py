"""Checks on template.yaml that `sam validate --lint` does not make: least privilege and the queue settings
the reliability rules depend on.

- Every function runs under its own explicit AWS::IAM::Role and has no SAM `Policies`: with a generated role,
  SAM would attach AWSLambdaBasicExecutionRole (every log group) and, for an SQS event,
  AWSLambdaSQSQueueExecutionRole (every queue in the account).
- No role has managed policies, a wildcard action or a literal resource (`*` included): resources are
  `!GetAtt <resource>.Arn`, or `!Sub "${<table>.Arn}/index/<name>"` for one index of a table of the template;
  logs go to the function's own log group only; a function may consume (receive/delete) only the queues its
  SQS events name.
- Each SQS-triggered function reports batch item failures; its queue has a dead-letter queue with
  maxReceiveCount >= 5 and a visibility timeout at least six times the function's timeout.
- The table is on-demand, with TTL, point-in-time recovery and encryption; the stack outputs the API URL.

Run by infra/test.sh: python infra/check_template.py [template.yaml]; exits 1 listing every failure.
"""

import sys

from cfnlint.decode import decode_str

CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}


def get_att(value, attribute="Arn"):
    """The logical id in {"Fn::GetAtt": [id, attribute]}, else None."""
    if isinstance(value, dict) and list(value) == ["Fn::GetAtt"]:
        target = value["Fn::GetAtt"]
        if isinstance(target, str):
            target = target.split(".", 1)
        if len(target) == 2 and target[1] == attribute:
            return target[0]
    return None


def index_of(value):
    """The table's logical id in {"Fn::Sub": "${Table.Arn}/index/NAME"} (one of its indexes), else None."""
    if isinstance(value, dict) and list(value) == ["Fn::Sub"] and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        if text.startswith("${") and ".Arn}/index/" in text:
            table, _, index = text[2:].partition(".Arn}/index/")
            if table and index and "$" not in index and "*" not in index:
                return table
    return None


def ref(value):
    if isinstance(value, dict) and list(value) == ["Ref"]:
        return value["Ref"]
    return None


def as_list(value):
    return value if isinstance(value, list) else [value]


def check(template):
    failures = []
    fail = failures.append
    resources = template.get("Resources", {})
    globals_fn = template.get("Globals", {}).get("Function", {})

    def typed(kind):
        return {k: v for k, v in resources.items() if v.get("Type") == kind}

    functions = typed("AWS::Serverless::Function")
    if sorted(functions) != ["CallbackFunction", "DispatchFunction", "IngestFunction", "ValidateFunction"]:
        fail(f"expected the four functions, found {sorted(functions)}")
    arch = template.get("Parameters", {}).get("Architecture", {})
    if arch.get("Default") != "arm64":
        fail("the Architecture parameter must default to arm64")

    for name, function in functions.items():
        props = function.get("Properties", {})
        if function.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
            fail(f"{name}: BuildMethod is not rust-cargolambda")
        if props.get("Runtime", globals_fn.get("Runtime")) != "provided.al2023":
            fail(f"{name}: runtime is not provided.al2023")
        if "Policies" in props:
            fail(f"{name}: has SAM Policies; give it an explicit role instead")
        role_id = get_att(props.get("Role"))
        role = resources.get(role_id or "", {})
        if role.get("Type") != "AWS::IAM::Role":
            fail(f"{name}: Role is not !GetAtt <an AWS::IAM::Role of this template>.Arn")
            continue
        role_props = role.get("Properties", {})
        if role_props.get("ManagedPolicyArns"):
            fail(f"{role_id}: has managed policies")
        statements = [
            statement
            for policy in role_props.get("Policies", [])
            for statement in as_list(policy.get("PolicyDocument", {}).get("Statement", []))
        ]
        log_group = ref(props.get("LoggingConfig", {}).get("LogGroup"))
        if not log_group:
            fail(f"{name}: LoggingConfig.LogGroup is not a !Ref to a log group of this template")
        consumed = set()
        for statement in statements:
            sid = statement.get("Sid", "?")
            actions = set(as_list(statement.get("Action", [])))
            targets = as_list(statement.get("Resource", []))
            if statement.get("Effect") != "Allow":
                continue
            if any("*" in action for action in actions):
                fail(f"{role_id}.{sid}: wildcard action")
            if any(isinstance(t, str) for t in targets):
                fail(f"{role_id}.{sid}: a literal resource ({targets}); name this stack's resources")
            ids = [get_att(t) or index_of(t) for t in targets]
            if any(i is None for i in ids):
                fail(
                    f"{role_id}.{sid}: resources must be !GetAtt <resource>.Arn (or !Sub "
                    f"\"${{<table>.Arn}}/index/<name>\" for one index), got {targets}"
                )
            if any(index_of(t) and resources.get(index_of(t), {}).get("Type") != "AWS::DynamoDB::Table" for t in targets):
                fail(f"{role_id}.{sid}: an index of something that is not a table of this template")
            if any(a.startswith("logs:") for a in actions) and ids != [log_group]:
                fail(f"{role_id}.{sid}: logs beyond the function's own log group {log_group}")
            if actions & CONSUME:
                consumed.update(ids)
        events = props.get("Events", {})
        queues = set()
        for event_name, event in events.items():
            if event.get("Type") != "SQS":
                continue
            event_props = event.get("Properties", {})
            queue = get_att(event_props.get("Queue"))
            queues.add(queue)
            if "ReportBatchItemFailures" not in event_props.get("FunctionResponseTypes", []):
                fail(f"{name}.{event_name}: no ReportBatchItemFailures")
            queue_props = resources.get(queue or "", {}).get("Properties", {})
            redrive = queue_props.get("RedrivePolicy", {})
            if get_att(redrive.get("deadLetterTargetArn")) is None:
                fail(f"{queue}: no dead-letter queue")
            if int(redrive.get("maxReceiveCount", 0)) < 5:
                fail(f"{queue}: maxReceiveCount below 5")
            timeout = int(props.get("Timeout", globals_fn.get("Timeout", 3)))
            visibility = int(queue_props.get("VisibilityTimeout", 30))
            if visibility < 6 * timeout:
                fail(f"{queue}: VisibilityTimeout {visibility} < 6 x {name} Timeout {timeout}")
            granted = set()
            for statement in statements:
                if get_att(as_list(statement.get("Resource", []))[0]) == queue:
                    granted |= set(as_list(statement.get("Action", [])))
            if not CONSUME <= granted:
                fail(f"{role_id}: cannot consume {queue} (needs {sorted(CONSUME)})")
        if consumed - queues:
            fail(f"{role_id}: may consume {sorted(consumed - queues)}, which no event of {name} reads")

    tables = typed("AWS::DynamoDB::Table")
    for name, table in tables.items():
        props = table.get("Properties", {})
        if props.get("BillingMode") != "PAY_PER_REQUEST":
            fail(f"{name}: not on-demand")
        if not props.get("TimeToLiveSpecification", {}).get("Enabled"):
            fail(f"{name}: TTL off")
        if not props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            fail(f"{name}: point-in-time recovery off")
        if not props.get("SSESpecification", {}).get("SSEEnabled"):
            fail(f"{name}: encryption (SSESpecification) off")
    if len(tables) != 1:
        fail(f"expected one table, found {len(tables)}")
    if "ApiUrl" not in template.get("Outputs", {}):
        fail("no ApiUrl output")
    return failures


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    with open(path, encoding="utf-8") as f:
        template, matches = decode_str(f.read())
    if matches:
        print(f"{path}: cannot parse: {matches}")
        return 1
    failures = check(template)
    # Partner URLs on AWS are public-only: the loopback setting is for local and test runs.
    with open(path, encoding="utf-8") as f:
        if "allow_loopback_urls" in f.read():
            failures.append("the template must never set [hub] allow_loopback_urls")
    for failure in failures:
        print(f"FAIL {failure}")
    if failures:
        return 1
    print(f"{path}: one explicit least-privilege role per function; queues, dead-letter queues and table as required")
    return 0


if __name__ == "__main__":
    sys.exit(main())
