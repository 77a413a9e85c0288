# eddy's Python runtime: a Lambda Runtime API client that loads `_HANDLER` (module.function)
# from LAMBDA_TASK_ROOT and calls it for each invocation with the event and a Lambda-like
# context, as Lambda's own Python runtime does.
#
# It imports as little as it can, since every import is paid at each cold start: HTTP is
# spoken over a socket here (http.client and the email package it pulls in cost ~15 ms to
# import), and traceback is imported only when there is an error to describe.
import importlib
import json
import os
import socket
import sys
import time

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"


class Connection:
    """One keep-alive HTTP/1.1 connection to the Runtime API, opened when first used."""

    def __init__(self):
        self.sock = None
        self.buffer = b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buffer = b""

    def request(self, method, path, body=b"", headers=None):
        if self.sock is None:
            host, _, port = API.rpartition(":")
            self.sock = socket.create_connection((host, int(port)))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: " + API, "Content-Length: %d" % len(body)]
        lines.extend("%s: %s" % header for header in (headers or {}).items())
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def response(self):
        """The status, the headers (lowercase names) and the body of the next answer."""
        head = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                body += self._exactly(size)
                self._until(b"\r\n")
                if size == 0:
                    break
        else:
            body = b""
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the Runtime API closed the connection")
        self.buffer += chunk

    def _until(self, marker):
        while marker not in self.buffer:
            self._fill()
        found, _, self.buffer = self.buffer.partition(marker)
        return found

    def _exactly(self, size):
        while len(self.buffer) < size:
            self._fill()
        found, self.buffer = self.buffer[:size], self.buffer[size:]
        return found


connection = Connection()
# Answers go on a connection of their own: the next long poll need not wait for an answer's
# acknowledgement, which is read just before the next answer is sent.
answers = Connection()
unacknowledged = False


def call(method, route, body=b"", headers=None):
    connection.request(method, BASE + route, body, headers)
    return connection.response()


def describe(error, error_type=None):
    import traceback

    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(traceback.extract_tb(error.__traceback__)),
    }


def post(route, payload, error_type=None):
    headers = {"content-type": "application/json"}
    if error_type:
        headers["lambda-runtime-function-error-type"] = error_type
    return call("POST", route, json.dumps(payload).encode(), headers)


def init_error(error, error_type):
    described = describe(error, error_type)
    described["errorMessage"] = "Unable to import module '%s': %s" % (os.environ.get("_HANDLER"), error) \
        if error_type == "Runtime.ImportModuleError" else described["errorMessage"]
    print(json.dumps(described), file=sys.stderr, flush=True)
    post("/init/error", described, error_type)
    sys.exit(1)


def load_handler():
    spec = os.environ.get("_HANDLER", "")
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", os.getcwd()))
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        init_error(ValueError("Bad handler '%s': write module.function" % spec), "Runtime.MalformedHandlerName")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except SyntaxError as error:
        init_error(error, "Runtime.UserCodeSyntaxError")
    except Exception as error:
        init_error(error, "Runtime.ImportModuleError")
    handler = getattr(module, function_name, None)
    if not callable(handler):
        init_error(AttributeError("Handler '%s' missing on module '%s'" % (function_name, module_name)),
                   "Runtime.HandlerNotFound")
    return handler


class Context:
    def __init__(self, headers):
        env = os.environ
        self.aws_request_id = headers.get("lambda-runtime-aws-request-id")
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self.eddy_event_id = headers.get("eddy-event-id")
        self.eddy_hops = int(headers.get("eddy-hops", "0"))
        self._deadline_ms = int(headers.get("lambda-runtime-deadline-ms", "0"))

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def main():
    handler = load_handler()
    while True:
        status, headers, body = call("GET", "/invocation/next")
        if status != 200:
            sys.exit(0)
        request_id = headers["lambda-runtime-aws-request-id"]
        try:
            event = json.loads(body)
            result = handler(event, Context(headers))
            answer = json.dumps(result).encode()
        except Exception as error:
            described = describe(error)
            print("[ERROR] %s: %s" % (described["errorType"], described["errorMessage"]), file=sys.stderr)
            for line in described["stackTrace"]:
                sys.stderr.write(line)
            sys.stderr.flush()
            post("/invocation/%s/error" % request_id, described, described["errorType"])
            continue
        answer_async("/invocation/%s/response" % request_id, answer)


def answer_async(route, body):
    global unacknowledged
    if unacknowledged:
        try:
            answers.response()
        except (OSError, ValueError, IndexError):
            answers.close()  # the connection went away; the next request opens another
        unacknowledged = False
    headers = {"content-type": "application/json"}
    try:
        answers.request("POST", BASE + route, body, headers)
    except OSError:
        answers.close()
        answers.request("POST", BASE + route, body, headers)
    unacknowledged = True


main()
