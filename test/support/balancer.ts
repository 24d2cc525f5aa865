// A load balancer in front of replicas, as an operator would run one: Debian's nginx on a free
// 127.0.0.1 port, round-robin over N upstream ports, HTTP/1.1 with keep-alive to the upstreams,
// nothing sticky, nothing buffered (request and response bodies stream both ways), no body size
// limit, long timeouts. Its config, pid file, temp dirs and logs live in a temp dir of its own
// (`nginx -p <dir> -c <conf> -e <log> -g 'daemon off;'`); the master runs in a process group of its
// own with its workers, which stop() (or a watchdog, if the test process dies) ends.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { havePeers, peerBin } from "./peers.js";
import { freePort } from "./postgres.js";
import { killGroups, reapGroupsWhenProcessEnds } from "./reaper.js";

/** True when nginx is installed; otherwise warns loudly, naming the package (skip the suite). */
export function haveNginx(suite: string): boolean {
  return havePeers(suite, "nginx");
}

export interface BalancerOptions {
  /** nginx worker processes (default 1). */
  workers?: number;
  /**
   * After this many failed attempts to reach an upstream (connect error, or timeout before it
   * answered) nginx leaves it out for failTimeoutSeconds (defaults 1 and 10, nginx's own);
   * 0 never leaves one out.
   */
  maxFails?: number;
  failTimeoutSeconds?: number;
}

/** One line of the access log: which upstream(s) nginx tried for a request, and the outcome. */
export interface BalancedRequest {
  method: string;
  uri: string;
  status: number;
  /** 127.0.0.1:<port> for each upstream tried, in order (more than one after a retry). */
  upstreams: string[];
  /** The upstreams' statuses, one per upstream tried ("502" for a failed connect). */
  upstreamStatuses: string[];
  requestBytes: number;
  /** nginx's $request_time: from the request's first byte to the answer's last, in seconds (ms resolution). */
  seconds: number;
}

export interface Balancer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** 127.0.0.1:<port>, for docker:// references. */
  host: string;
  port: number;
  upstreams: number[];
  /** nginx's master pid, which leads the process group of it and its workers. */
  processGroup: number;
  /** Every request nginx has finished, in order. */
  requests(): BalancedRequest[];
  /** nginx's error log (for diagnosing a failing test). */
  output(): string;
  /** Stops nginx (SIGTERM to its process group, SIGKILL after 5 s) and removes its files. Idempotent. */
  stop(): Promise<void>;
}

function config(o: { dir: string; port: number; upstreams: number[]; workers: number; maxFails: number; failTimeout: number }): string {
  const asRoot = process.getuid?.() === 0;
  const servers = o.upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=${o.maxFails} fail_timeout=${o.failTimeout}s;`).join("\n");
  const temp = (name: string) => JSON.stringify(join(o.dir, "temp", name));
  return `# Written by test/support/balancer.ts
${asRoot ? "user root;\n" : ""}worker_processes ${o.workers};
pid ${JSON.stringify(join(o.dir, "nginx.pid"))};
error_log ${JSON.stringify(join(o.dir, "error.log"))} warn;

events {
  worker_connections 4096;
}

http {
  log_format balanced '$request_method $request_uri $status $request_length "$upstream_addr" "$upstream_status" $request_time';
  access_log ${JSON.stringify(join(o.dir, "access.log"))} balanced;
  server_tokens off;

  # Debian builds nginx with absolute temp paths under /var/lib/nginx: keep them in our dir.
  client_body_temp_path ${temp("client_body")};
  proxy_temp_path ${temp("proxy")};
  fastcgi_temp_path ${temp("fastcgi")};
  uwsgi_temp_path ${temp("uwsgi")};
  scgi_temp_path ${temp("scgi")};

  upstream replicas {
    # Round-robin (nginx's default): no ip_hash, no sticky cookie; any request to any replica.
${servers}
    keepalive 64;
  }

  server {
    listen 127.0.0.1:${o.port};

    # Stream both ways: an upload reaches a replica as the client sends it, a download leaves as
    # the replica sends it; no size limit (blobs are large), nothing spooled to temp files.
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_buffer_size 64k;
    proxy_buffers 8 64k;
    large_client_header_buffers 8 64k;

    # HTTP/1.1 with keep-alive to the upstreams (an empty Connection header, not "close").
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $http_host;
    proxy_set_header X-Forwarded-Port $server_port;
    proxy_redirect off;

    # Long transfers of large blobs on slow machines.
    proxy_connect_timeout 10s;
    proxy_send_timeout 1h;
    proxy_read_timeout 1h;
    client_body_timeout 1h;
    send_timeout 1h;

    # Retries: only on a connect error or a timeout, and only while it is safe. This is nginx's
    # default, spelled out: without "non_idempotent", a POST, PATCH or LOCK that has been sent to
    # one upstream is never sent again to another (an upload chunk must not be applied twice),
    # and with proxy_request_buffering off no request whose body has started to stream is
    # retried at all (nginx has not kept the bytes). A request that never reached an upstream
    # (connection refused: a replica that is down) goes to the next one.
    proxy_next_upstream error timeout;

    location / {
      proxy_pass http://replicas;
    }
  }
}
`;
}

function parseAccessLine(line: string): BalancedRequest | undefined {
  const m = /^(\S+) (\S+) (\d+) (\d+) "([^"]*)" "([^"]*)" ([\d.]+)$/.exec(line);
  if (!m) return undefined;
  // Several upstreams are listed "a, b" (a retry) or "a : b" (an internal redirect).
  const list = (s: string) => (s === "-" || s === "" ? [] : s.split(/\s*[,:]\s+/));
  return {
    method: m[1]!,
    uri: m[2]!,
    status: Number(m[3]),
    requestBytes: Number(m[4]),
    upstreams: list(m[5]!),
    upstreamStatuses: list(m[6]!),
    seconds: Number(m[7]),
  };
}

function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(1000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Starts nginx balancing over `upstreams` (ports on 127.0.0.1; they need not be listening yet). */
export async function startBalancer(upstreams: number[], options: BalancerOptions = {}): Promise<Balancer> {
  if (upstreams.length === 0) throw new Error("startBalancer: no upstream ports");
  for (let attempt = 1; ; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), "artifact-nginx-"));
    const reaper = reapGroupsWhenProcessEnds(dir);
    for (const t of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, "temp", t), { recursive: true });
    const port = await freePort();
    const conf = join(dir, "nginx.conf");
    const errorLog = join(dir, "error.log");
    const accessLog = join(dir, "access.log");
    writeFileSync(
      conf,
      config({ dir, port, upstreams, workers: options.workers ?? 1, maxFails: options.maxFails ?? 1, failTimeout: options.failTimeoutSeconds ?? 10 }),
    );
    const fd = openSync(join(dir, "stderr.log"), "a");
    // detached: nginx's master leads a process group of its own, which its workers join.
    const child: ChildProcess = spawn(peerBin("nginx"), ["-p", dir, "-c", conf, "-e", errorLog, "-g", "daemon off;"], {
      cwd: dir,
      detached: true,
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    let exited = false;
    child.once("exit", () => (exited = true));
    child.once("error", () => (exited = true));
    if (child.pid !== undefined) reaper.track(child.pid);
    const output = () => [tail(join(dir, "stderr.log")), tail(errorLog)].filter(Boolean).join("\n");
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      if (child.pid !== undefined) await killGroups([child.pid]);
      reaper.release();
      rmSync(dir, { recursive: true, force: true });
    };

    const deadline = Date.now() + 30_000;
    while (!exited && Date.now() < deadline && !(await listening(port))) await new Promise((r) => setTimeout(r, 20));
    if (!exited && Date.now() < deadline) {
      return {
        url: `http://127.0.0.1:${port}`,
        host: `127.0.0.1:${port}`,
        port,
        upstreams: [...upstreams],
        processGroup: child.pid!,
        requests: () => {
          let text = "";
          try {
            text = readFileSync(accessLog, "utf8");
          } catch {
            // nothing logged yet
          }
          return text
            .split("\n")
            .filter(Boolean)
            .flatMap((l) => parseAccessLine(l) ?? []);
        },
        output,
        stop,
      };
    }
    const log = output();
    await stop();
    // A port taken between freePort() and nginx's bind: try again on another.
    if (/address already in use/i.test(log) && attempt < 3) continue;
    throw new Error(`nginx did not start listening on 127.0.0.1:${port}:\n${log}`);
  }
}
