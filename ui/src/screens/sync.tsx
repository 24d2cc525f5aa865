// A REMOTE registry: test the connection (reachability, latency, whether the credential is
// accepted) and run a sync with a live progress bar fed by the SyncRegistry stream, then its report.
import { createClient } from "@connectrpc/connect";
import { useMutation, useQuery, useTransport } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { RegistryKind, RegistryService, type SyncRegistryProgress } from "../../../gen/artifact/v1/registry_pb.js";
import { Empty, ErrorView, Loading } from "../components.js";
import { paths } from "../router.js";
import { Crumbs } from "./browse.js";

export function Sync({ registry }: { registry: string }) {
  const reg = useQuery(RegistryService.method.lookupRegistry, { name: registry });
  const ping = useMutation(RegistryService.method.pingRegistry);
  const transport = useTransport();
  const client = useQueryClient();
  const [progress, setProgress] = useState<SyncRegistryProgress>();
  const [errors, setErrors] = useState<string[]>([]);
  const [state, setState] = useState<"idle" | "running" | "done" | "failed">("idle");
  const [failure, setFailure] = useState<unknown>();
  const abort = useRef<AbortController>(undefined);
  const run = async (id: string) => {
    abort.current = new AbortController();
    setState("running");
    setErrors([]);
    setFailure(undefined);
    setProgress(undefined);
    try {
      for await (const p of createClient(RegistryService, transport).syncRegistry({ id }, { signal: abort.current.signal })) {
        setProgress(p);
        if (p.error) setErrors((e) => [...e.slice(-99), `${p.repository}: ${p.error}`]);
      }
      setState("done");
      void client.invalidateQueries();
    } catch (err) {
      setFailure(err);
      setState("failed");
    }
  };
  const crumbs: [string, string | undefined][] = [
    ["Registries", paths.home()],
    [registry, paths.registry(registry)],
    ["Sync", undefined],
  ];
  if (reg.isPending) return <Loading what="the registry" />;
  if (reg.isError) return <ErrorView error={reg.error} />;
  if (reg.data.kind !== RegistryKind.REMOTE)
    return (
      <section>
        <Crumbs items={crumbs} />
        <Empty>
          <p>{registry} is a HOSTED registry: it stores what is pushed to it and has nothing to sync.</p>
        </Empty>
      </section>
    );
  const found = progress?.repositoriesFound ?? 0;
  const synced = progress?.repositoriesSynced ?? 0;
  return (
    <section>
      <Crumbs items={crumbs} />
      <h1>
        Sync <span className="name">{registry}</span>
      </h1>
      <p>
        Upstream: <code>{reg.data.url}</code>
      </p>
      <h2>Connection</h2>
      <button type="button" onClick={() => ping.mutate({ id: reg.data.id })} disabled={ping.isPending}>
        {ping.isPending ? "Testing…" : "Test connection"}
      </button>
      {ping.isError && <ErrorView error={ping.error} />}
      {ping.data && (
        <dl className="facts" aria-live="polite">
          <dt>Reachable</dt>
          <dd>{ping.data.reachable ? "yes" : "no"}</dd>
          <dt>Credential accepted</dt>
          <dd>{ping.data.authenticated ? "yes" : "no"}</dd>
          <dt>Round trip</dt>
          <dd>{ping.data.roundTripMs.toFixed(1)} ms</dd>
          <dt>HTTP status</dt>
          <dd>{ping.data.status || "—"}</dd>
          {ping.data.message && (
            <>
              <dt>Message</dt>
              <dd>{ping.data.message}</dd>
            </>
          )}
        </dl>
      )}
      <h2>Sync</h2>
      <p>Reads the upstream's catalog and tags into this registry (tags only: images are fetched on first pull).</p>
      <div className="actions-row">
        <button type="button" className="primary" onClick={() => void run(reg.data.id)} disabled={state === "running"}>
          {state === "running" ? "Syncing…" : "Start sync"}
        </button>
        {state === "running" && (
          <button type="button" onClick={() => abort.current?.abort()}>
            Stop watching
          </button>
        )}
      </div>
      {state !== "idle" && (
        <div className="sync-progress">
          <label htmlFor="sync-bar">
            Repositories synced: {synced} of {found || "?"}
          </label>
          <progress id="sync-bar" max={Math.max(found, 1)} value={state === "done" ? Math.max(found, 1) : synced} data-state={state} />
          {progress?.repository && state === "running" && <p className="muted">Now: {progress.repository}</p>}
        </div>
      )}
      {state === "failed" && <ErrorView error={failure} />}
      {(state === "done" || state === "running") && progress && (
        <dl className="facts report" aria-live="polite" data-testid="sync-report">
          <dt>Repositories</dt>
          <dd>
            {synced} of {found}
          </dd>
          <dt>Tags added</dt>
          <dd>{progress.tagsAdded}</dd>
          <dt>Tags updated</dt>
          <dd>{progress.tagsUpdated}</dd>
          <dt>Tags removed</dt>
          <dd>{progress.tagsRemoved}</dd>
          <dt>Errors</dt>
          <dd>{progress.errors}</dd>
        </dl>
      )}
      {state === "done" && <p role="status">Sync finished.</p>}
      {errors.length > 0 && (
        <details open>
          <summary>Errors ({errors.length})</summary>
          <ul>
            {errors.map((e, i) => (
              <li key={i}>{e}</li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}
