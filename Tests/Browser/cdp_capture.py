#!/usr/bin/env python3
"""Drives a headless Chromium through the DevTools protocol (stdlib only): opens URL,
waits until `document.body.dataset.updates` reaches MIN_UPDATES (live updates arrived),
then prints the rendered DOM and saves a screenshot.

Usage: cdp_capture.py CHROMIUM URL SCREENSHOT_PATH [MIN_UPDATES] [TIMEOUT_SECONDS]
Exit codes: 0 done, 2 the updates did not arrive in time (the DOM is printed anyway).
"""
import base64, json, os, shutil, socket, struct, subprocess, sys, tempfile, time, urllib.request

chromium, url, screenshot = sys.argv[1], sys.argv[2], sys.argv[3]
minimum = int(sys.argv[4]) if len(sys.argv) > 4 else 2
timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 20

profile = tempfile.mkdtemp(prefix="kapsel-chromium-")
browser = subprocess.Popen(
    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
     "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1280,1000", "about:blank"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Socket:
    """A WebSocket client for one DevTools target (text frames, masked, no extensions)."""

    def __init__(self, ws_url):
        host_port, path = ws_url[len("ws://"):].split("/", 1)
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(4096)
        if b" 101 " not in response.split(b"\r\n")[0]:
            raise SystemExit(f"the DevTools socket refused the upgrade: {response[:200]!r}")
        self.buffer = response.split(b"\r\n\r\n", 1)[1]
        self.next_id = 0

    def _read(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise SystemExit("the DevTools socket closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def _frame(self):
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack(">H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._read(8))[0]
        return first & 0x0F, self._read(length)

    def call(self, method, **params):
        self.next_id += 1
        payload = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        header = bytes([0x81])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", length)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        message = b""
        while True:
            opcode, data = self._frame()
            message += data
            if opcode in (0x1, 0x0):
                try:
                    reply = json.loads(message)
                except ValueError:
                    continue
                message = b""
                if reply.get("id") == self.next_id:
                    return reply.get("result", {})


def evaluate(target, expression):
    return target.call("Runtime.evaluate", expression=expression, returnByValue=True).get("result", {}).get("value")


status = 1
try:
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.time() + timeout
    while not os.path.exists(port_file) or not open(port_file).read().strip():
        if time.time() > deadline:
            raise SystemExit("Chromium did not open its DevTools port")
        time.sleep(0.05)
    port = open(port_file).read().split()[0]
    pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    target = Socket(next(page for page in pages if page.get("type") == "page")["webSocketDebuggerUrl"])
    target.call("Page.enable")
    target.call("Page.navigate", url=url)
    status = 2
    while time.time() < deadline:
        updates = evaluate(target, "document.body ? Number(document.body.dataset.updates || 0) : 0") or 0
        if updates >= minimum:
            status = 0
            break
        time.sleep(0.1)
    print(evaluate(target, "document.documentElement.outerHTML"))
    shot = target.call("Page.captureScreenshot", format="png")
    with open(screenshot, "wb") as file:
        file.write(base64.b64decode(shot["data"]))
finally:
    browser.kill()
    browser.wait()
    shutil.rmtree(profile, ignore_errors=True)
sys.exit(status)
