"""The functions under `cargo lambda watch`, fed by `leadhub-admin pump`, on moto: the README's section, run.

Run by infra/test.sh (under CI=true, or with LEADHUB_LAMBDA_WATCH=1) after moto is up:

    python infra/lambda_watch_check.py --moto http://127.0.0.1:PORT --bin target/debug

It bootstraps a fresh table and queues on moto (short visibility timeout, maxReceiveCount 5), stores
infra/config.cargo-lambda.toml with this run's ports, starts the sandbox webhook buyer, `cargo lambda watch`
and the pump, then checks that

1. a HELOC lead posted to ingest over HTTP reads `delivered` through ingest's GET, and the buyer received it
   (its `GET /_sandbox/received` lists the lead id);
2. a poisoned message on the validate queue is handed to validate `maxReceiveCount` times, fails each
   time, and lands in the validate dead-letter queue;
3. `leadhub-local --backend aws --endpoint MOTO` takes the README's heloc example to `delivered`;
4. `leadhub-local --config infra/config.example.toml` runs, and a test lead on it ends `test` with its plan.

Every process is started in its own process group and stopped at the end. Logs go to --work.
"""

import argparse
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_RECEIVE_COUNT = 5
VISIBILITY_TIMEOUT = 2
# The first invocation of each function waits for cargo lambda to build it.
FIRST_BUILD_TIMEOUT = 900

HASH_KEY = "lw-hash-key-0123456789abcdef0123456789"
CALLBACK_KEY = "lw-callback-key-0123456789abcdef012345"
SSN_KEY = "lw-ssn-key-0123456789abcdef0123456789ab"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, auth=None, timeout=30, headers=None):
    headers = {"Content-Type": "application/json", **(headers or {})}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Processes:
    def __init__(self, work):
        self.work = work
        self.running = []

    def start(self, name, argv, env):
        log = open(os.path.join(self.work, f"{name}.log"), "w")
        process = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=ROOT,
        )
        self.running.append((name, process, log))
        print(f"started {name} (pid {process.pid}, log {log.name})", flush=True)
        return process

    def log(self, name):
        with open(os.path.join(self.work, f"{name}.log")) as f:
            return f.read()

    def alive(self, name):
        for n, process, _ in self.running:
            if n == name:
                return process.poll() is None
        return False

    def stop(self):
        for name, process, log in reversed(self.running):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGINT if name == "pump" else signal.SIGTERM)
                    process.wait(timeout=15)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    process.wait()
            log.close()


def fail(message, processes=None, logs=()):
    print(f"FAIL: {message}", file=sys.stderr)
    for name in logs:
        try:
            tail = processes.log(name).splitlines()[-30:]
        except OSError:
            continue
        print(f"--- last lines of {name}.log ---", file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--moto", required=True)
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "debug"))
    parser.add_argument("--work", default=os.path.join(ROOT, "target", "infra-test", "lambda-watch"))
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)

    import boto3  # installed with moto

    env = dict(os.environ)
    env.update({
        "AWS_ENDPOINT_URL": args.moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "LEADHUB_HASH_KEY": HASH_KEY,
        "LEADHUB_CALLBACK_KEY": CALLBACK_KEY,
        "LEADHUB_SSN_KEY": SSN_KEY,
        "LEADHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "RUST_LOG": "info",
    })
    admin = os.path.join(args.bin, "leadhub-admin")
    prefix = f"lw{int(time.time())}"

    out = subprocess.run(
        [admin, "bootstrap", prefix, "--visibility-timeout", str(VISIBILITY_TIMEOUT),
         "--max-receive-count", str(MAX_RECEIVE_COUNT)],
        env=env, capture_output=True, text=True, cwd=ROOT,
    )
    if out.returncode != 0:
        fail(f"leadhub-admin bootstrap: {out.stderr}")
    for line in out.stdout.splitlines():
        match = re.fullmatch(r"export (\w+)=(.*)", line.strip())
        if match:
            env[match.group(1)] = match.group(2)
    for variable in ("LEADHUB_TABLE", "LEADHUB_VALIDATE_QUEUE_URL", "LEADHUB_DISPATCH_QUEUE_URL"):
        if variable not in env:
            fail(f"bootstrap printed no {variable}: {out.stdout}")
    print(f"bootstrapped {env['LEADHUB_TABLE']} and its queues", flush=True)

    watch_port, buyer_port = free_port(), free_port()
    with open(os.path.join(ROOT, "infra", "config.cargo-lambda.toml")) as f:
        config = f.read()
    config = config.replace("127.0.0.1:9000", f"127.0.0.1:{watch_port}")
    config = config.replace("127.0.0.1:9100", f"127.0.0.1:{buyer_port}")
    config_path = os.path.join(args.work, "config.toml")
    with open(config_path, "w") as f:
        f.write(config)
    out = subprocess.run([admin, "config", "put", config_path, env["LEADHUB_TABLE"]],
                         env=env, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        fail(f"leadhub-admin config put: {out.stderr}")

    processes = Processes(args.work)
    try:
        processes.start("buyer", [os.path.join(args.bin, "leadhub-sandbox"), "webhook",
                                  "--addr", f"127.0.0.1:{buyer_port}"], env)
        processes.start("watch", ["cargo", "lambda", "watch", "--ignore-changes", "-A", "127.0.0.1", "-P", str(watch_port)], env)
        processes.start("pump", [admin, "pump", "--invoke-url", f"http://127.0.0.1:{watch_port}"], env)
        check_delivery(processes, watch_port, buyer_port)
        check_dead_letter(processes, boto3, env)
    finally:
        processes.stop()
    check_local_on_aws(args, env)
    check_local_on_the_example_config(args, env)
    print("lambda watch check: passed")


def wait_for_http(processes, name, url, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.alive(name):
            fail(f"{name} stopped", processes, [name])
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.5)
    fail(f"{name} did not answer at {url} within {timeout} s", processes, [name])


def check_delivery(processes, watch_port, buyer_port):
    base = f"http://127.0.0.1:{watch_port}/lambda-url/ingest"
    wait_for_http(processes, "buyer", f"http://127.0.0.1:{buyer_port}/_sandbox/received", 60)
    wait_for_http(processes, "watch", f"http://127.0.0.1:{watch_port}/", 120)

    with open(os.path.join(ROOT, "infra", "examples", "heloc.json")) as f:
        lead = json.load(f)
    # Seed 001: the email must not already exist in the system.
    lead["contactInfo"]["email"] = f"jane.doe+{int(time.time() * 1000)}@example.com"
    started = time.monotonic()
    status, body = http("POST", f"{base}/v1/leads/heloc", json.dumps(lead).encode(),
                        auth="demo:demo-secret", timeout=FIRST_BUILD_TIMEOUT)
    if status != 202:
        fail(f"POST /v1/leads/heloc answered {status}: {body}", processes, ["watch"])
    lead_id = json.loads(body)["leadId"]
    print(f"posted {lead_id} (202 after {time.monotonic() - started:.0f} s)", flush=True)

    deadline = time.monotonic() + 2 * FIRST_BUILD_TIMEOUT
    view = None
    while time.monotonic() < deadline:
        status, body = http("GET", f"{base}/v1/leads/{lead_id}", auth="demo:demo-secret", timeout=60)
        if status == 200:
            view = json.loads(body)
            if view["status"] == "delivered":
                break
            if view["status"] in ("rejected", "unsold"):
                fail(f"the lead ended {view['status']}: {body}", processes, ["pump", "watch"])
        time.sleep(1)
    else:
        fail(f"the lead is not delivered: {view}", processes, ["pump", "watch", "buyer"])
    kinds = [event["kind"] for event in view["timeline"]]
    print(f"{lead_id} delivered after {time.monotonic() - started:.0f} s: {' -> '.join(kinds)}", flush=True)

    status, body = http("GET", f"http://127.0.0.1:{buyer_port}/_sandbox/received")
    received = json.loads(body)["received"]
    if not any(r["leadId"] == lead_id and r["status"] == 200 for r in received):
        fail(f"the buyer has no receipt of {lead_id}: {received}", processes, ["buyer"])
    print(f"the buyer received {lead_id} ({len(received)} deliveries in all)", flush=True)


def check_dead_letter(processes, boto3, env):
    sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    queue_url = env["LEADHUB_VALIDATE_QUEUE_URL"]
    dlq_url = sqs.get_queue_url(QueueName=queue_url.rsplit("/", 1)[1] + "-dlq")["QueueUrl"]
    poison = f"poison {time.time()}: not a validate job"
    message_id = sqs.send_message(QueueUrl=queue_url, MessageBody=poison)["MessageId"]
    print(f"sent poisoned message {message_id}", flush=True)

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  AttributeNames=["All"]).get("Messages", [])
        dead = [m for m in got if m["Body"] == poison]
        if dead:
            break
    else:
        fail("the poisoned message did not reach the dead-letter queue", processes, ["pump"])
    # SQS keeps a message's receive count when it moves it; this check's own receive from the
    # dead-letter queue is one more.
    receives = int(dead[0]["Attributes"]["ApproximateReceiveCount"]) - 1
    failed_batches = len(re.findall(r"^validate\s+batch of\s+1\s+failures\s+1\b",
                                    processes.log("pump"), re.MULTILINE))
    print(f"the poisoned message is in {dlq_url.rsplit('/', 1)[1]} after {receives} receives; "
          f"the pump reported {failed_batches} failed validate batches of one", flush=True)
    if receives != MAX_RECEIVE_COUNT or failed_batches != MAX_RECEIVE_COUNT:
        fail(f"expected exactly {MAX_RECEIVE_COUNT} receives and failed batches before the dead-letter queue",
             processes, ["pump"])
    status = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    if int(status["ApproximateNumberOfMessages"]) + int(status["ApproximateNumberOfMessagesNotVisible"]):
        fail(f"the validate queue still holds messages: {status}", processes, ["pump"])


def check_local_on_aws(args, env):
    port = free_port()
    env = dict(env, LEADHUB_DEMO_SECRET="demo-secret")
    processes = Processes(args.work)
    try:
        processes.start("local-aws", [os.path.join(args.bin, "leadhub-local"), "--backend", "aws",
                                      "--endpoint", args.moto, "--prefix", f"la{int(time.time())}",
                                      "--addr", f"127.0.0.1:{port}"], env)
        base = f"http://127.0.0.1:{port}"
        wait_for_http(processes, "local-aws", f"{base}/v1/openapi.json", 120)
        with open(os.path.join(ROOT, "infra", "examples", "heloc.json"), "rb") as f:
            status, body = http("POST", f"{base}/v1/leads/heloc", f.read(), auth="pk_demo:demo-secret")
        if status != 202:
            fail(f"leadhub-local on moto: POST answered {status}: {body}", processes, ["local-aws"])
        lead_id = json.loads(body)["leadId"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = http("GET", f"{base}/v1/leads/{lead_id}", auth="pk_demo:demo-secret")
            if status == 200 and json.loads(body)["status"] == "delivered":
                break
            time.sleep(0.5)
        else:
            fail(f"leadhub-local on moto: {lead_id} is not delivered: {body}", processes, ["local-aws"])
        print(f"leadhub-local --backend aws: {lead_id} delivered", flush=True)
    finally:
        processes.stop()


def check_local_on_the_example_config(args, env):
    port = free_port()
    env = dict(env)
    for name in ("HELOC_LENDER_API_KEY", "SONAR_CLIENT_SECRET", "NTHERM_USERNAME", "NTHERM_PASSWORD",
                 "LOFTY_ACCESS_TOKEN", "LOFTY_VENDOR_KEY", "LEADSAFE_API_KEY", "LEADSAFE_CLIENT_SECRET"):
        env[name] = "example"
    env["LENDER_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    processes = Processes(args.work)
    try:
        processes.start("local-example", [os.path.join(args.bin, "leadhub-local"), "--config",
                                          os.path.join(ROOT, "infra", "config.example.toml"),
                                          "--addr", f"127.0.0.1:{port}"], env)
        base = f"http://127.0.0.1:{port}"
        wait_for_http(processes, "local-example", f"{base}/v1/openapi.json", 60)
        with open(os.path.join(ROOT, "infra", "examples", "heloc.json"), "rb") as f:
            status, body = http("POST", f"{base}/v1/leads/heloc", f.read(), auth="pk_acme:sk_acme_example",
                                headers={"Leadhub-Test": "true"})
        if status != 202:
            fail(f"leadhub-local --config: POST answered {status}: {body}", processes, ["local-example"])
        lead_id = json.loads(body)["leadId"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = http("GET", f"{base}/v1/leads/{lead_id}", auth="pk_acme:sk_acme_example")
            if status == 200 and json.loads(body)["status"] == "test":
                break
            time.sleep(0.3)
        else:
            fail(f"leadhub-local --config: the test lead did not end test: {body}", processes, ["local-example"])
        plan = [e.get("reason", "") for e in json.loads(body)["timeline"] if e.get("code") == "test_plan"]
        if not plan or not plan[0].startswith("would be offered to: lender-webhook"):
            fail(f"leadhub-local --config: unexpected plan {plan}", processes, ["local-example"])
        print(f"leadhub-local --config infra/config.example.toml: test lead {lead_id}: {plan[0]}", flush=True)
    finally:
        processes.stop()


if __name__ == "__main__":
    main()
