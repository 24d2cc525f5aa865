// One image: the manifest (raw JSON on demand), an index's platforms, the config (created,
// entrypoint/cmd, env, labels, ports, history), the layers with sizes and the total, referrers,
// the tags at the same digest, and pull commands to copy.
import { createClient } from "@connectrpc/connect";
import { useQuery, useTransport } from "@connectrpc/connect-query";
import { useQuery as useTanstackQuery } from "@tanstack/react-query";
import { useState } from "react";
import { ImageService, type GetManifestResponse } from "../../../gen/artifact/v1/image_pb.js";
import { TagService, type Tag } from "../../../gen/artifact/v1/tag_pb.js";
import { useMe } from "../app.js";
import { Copy, Empty, ErrorView, formatBytes, Loading, shortDigest, Time } from "../components.js";
import { Link, navigate, paths } from "../router.js";
import { Crumbs } from "./browse.js";
import { DeleteTag, isIndex, mediaTypeLabel, platformName } from "./tags.js";

interface ImageConfig {
  created?: string;
  architecture?: string;
  os?: string;
  config?: {
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, unknown> | null;
    WorkingDir?: string;
    User?: string;
  };
  history?: { created?: string; created_by?: string; empty_layer?: boolean; comment?: string }[];
}

export function Image({ repository, reference }: { repository: string; reference: string }) {
  const me = useMe();
  const manifest = useQuery(ImageService.method.getManifest, { repository, reference });
  const byDigest = reference.includes(":");
  const tag = useQuery(TagService.method.lookupTag, byDigest ? undefined : { name: `${repository}:${reference}` }, { enabled: !byDigest });
  const [deleting, setDeleting] = useState<Tag>();
  const [registry, namespace] = repository.split("/");
  const crumbs: [string, string | undefined][] = [
    ["Registries", paths.home()],
    [registry!, paths.registry(registry!)],
    [namespace!, paths.namespace(registry!, namespace!)],
    [repository.split("/").slice(2).join("/"), paths.repository(repository)],
    [byDigest ? shortDigest(reference) : reference, undefined],
  ];
  const t = tag.data;
  const canDelete = t ? me.roles.canDelete({ registryId: t.registryId, namespaceId: t.namespaceId }) : false;
  return (
    <section>
      <Crumbs items={crumbs} />
      <div className="heading">
        <h1 className="name">
          {repository}
          {byDigest ? "@" : ":"}
          {byDigest ? shortDigest(reference) : reference}
        </h1>
        {t && canDelete && (
          <button type="button" className="danger" onClick={() => setDeleting(t)}>
            Delete tag
          </button>
        )}
      </div>
      {manifest.isPending ? (
        <Loading what="the manifest" />
      ) : manifest.isError ? (
        <ErrorView error={manifest.error} retry={() => void manifest.refetch()} />
      ) : (
        <ImageBody repository={repository} reference={reference} m={manifest.data} tag={t} />
      )}
      {deleting && (
        <DeleteTag
          tag={deleting}
          onDone={(deleted) => {
            setDeleting(undefined);
            if (deleted) navigate(paths.repository(repository));
          }}
        />
      )}
    </section>
  );
}

function ImageBody({ repository, reference, m, tag }: { repository: string; reference: string; m: GetManifestResponse; tag?: Tag }) {
  const summary = m.summary;
  const index = isIndex(m.mediaType);
  const layersTotal = (summary?.layers ?? []).reduce((sum, l) => sum + l.sizeBytes, 0n);
  const host = location.host;
  const ref = reference.includes(":") ? `${repository}@${reference}` : `${repository}:${reference}`;
  return (
    <>
      <dl className="facts">
        <dt>Digest</dt>
        <dd>
          <Copy text={m.digest} label="manifest digest" />
        </dd>
        <dt>Media type</dt>
        <dd>
          {mediaTypeLabel(m.mediaType)} <code className="muted">{m.mediaType}</code>
        </dd>
        <dt>Manifest size</dt>
        <dd>{formatBytes(m.sizeBytes)}</dd>
        <dt>Total size</dt>
        <dd>{formatBytes(summary?.referencedSizeBytes ?? 0n)}</dd>
        {tag && (
          <>
            <dt>Pushed</dt>
            <dd>
              <Time t={tag.pushTime} exact />
            </dd>
          </>
        )}
        {summary?.artifactType && (
          <>
            <dt>Artifact type</dt>
            <dd>{summary.artifactType}</dd>
          </>
        )}
        {summary?.subject && (
          <>
            <dt>Subject</dt>
            <dd>
              <Link to={paths.image(repository, summary.subject.digest)}>{summary.subject.digest}</Link>
            </dd>
          </>
        )}
      </dl>

      <h2>Pull</h2>
      <ul className="pulls">
        <li>
          <Copy text={`docker pull ${host}/${ref}`} label="docker pull command" />
        </li>
        <li>
          <Copy text={`podman pull ${host}/${ref}`} label="podman pull command" />
        </li>
        <li>
          <Copy text={`skopeo copy docker://${host}/${ref} oci:./image`} label="skopeo copy command" />
        </li>
      </ul>

      {index && (
        <>
          <h2>Platforms</h2>
          <table className="platforms">
            <thead>
              <tr>
                <th scope="col">Platform</th>
                <th scope="col">Digest</th>
                <th scope="col">Size</th>
              </tr>
            </thead>
            <tbody>
              {(summary?.manifests ?? []).map((d) => (
                <tr key={d.digest}>
                  <td>
                    <Link to={paths.image(repository, d.digest)}>{platformName(d.platform)}</Link>
                  </td>
                  <td>
                    <code data-digest={d.digest}>{d.digest}</code>
                  </td>
                  <td>{formatBytes(d.sizeBytes)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}

      {!index && summary?.config && <Config repository={repository} digest={summary.config.digest} mediaType={summary.config.mediaType} />}

      {!index && (
        <>
          <h2>Layers</h2>
          {(summary?.layers ?? []).length === 0 ? (
            <Empty>
              <p>No layers.</p>
            </Empty>
          ) : (
            <table className="layers">
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Media type</th>
                  <th scope="col">Size</th>
                </tr>
              </thead>
              <tbody>
                {(summary?.layers ?? []).map((l, i) => (
                  <tr key={`${i}-${l.digest}`}>
                    <td>{i + 1}</td>
                    <td>
                      <code data-digest={l.digest}>{l.digest}</code>
                    </td>
                    <td className="small-text">{l.mediaType}</td>
                    <td data-bytes={String(l.sizeBytes)}>{formatBytes(l.sizeBytes)}</td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr>
                  <th scope="row" colSpan={3}>
                    Total of the layers
                  </th>
                  <td>{formatBytes(layersTotal)}</td>
                </tr>
              </tfoot>
            </table>
          )}
        </>
      )}

      <SameDigest repository={repository} digest={m.digest} />
      <Referrers repository={repository} digest={m.digest} />

      <details className="raw">
        <summary>Raw manifest (JSON)</summary>
        <pre tabIndex={0}>{prettyJson(m.raw)}</pre>
      </details>
    </>
  );
}

function prettyJson(raw: Uint8Array): string {
  const text = new TextDecoder().decode(raw);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** The config blob, read with the typed client's GetBlob stream. */
function Config({ repository, digest, mediaType }: { repository: string; digest: string; mediaType: string }) {
  const transport = useTransport();
  const config = useTanstackQuery({
    queryKey: ["config", repository, digest],
    staleTime: Infinity,
    queryFn: async () => {
      const chunks: Uint8Array[] = [];
      for await (const part of createClient(ImageService, transport).getBlob({ repository, digest })) chunks.push(part.data);
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.length;
      }
      return JSON.parse(new TextDecoder().decode(all)) as ImageConfig;
    },
  });
  if (!mediaType.includes("config") && !mediaType.includes("container.image")) return null;
  return (
    <>
      <h2>Config</h2>
      {config.isPending ? <Loading what="the config" /> : config.isError ? <ErrorView error={config.error} /> : <ConfigView c={config.data} />}
    </>
  );
}

function ConfigView({ c }: { c: ImageConfig }) {
  const cfg = c.config ?? {};
  const list = (v: string[] | null | undefined) => (v && v.length ? <code>{JSON.stringify(v)}</code> : <span className="muted">—</span>);
  return (
    <>
      <dl className="facts">
        <dt>Created</dt>
        <dd>{c.created ?? "—"}</dd>
        <dt>Platform</dt>
        <dd>{[c.os, c.architecture].filter(Boolean).join("/") || "—"}</dd>
        <dt>Entrypoint</dt>
        <dd>{list(cfg.Entrypoint)}</dd>
        <dt>Cmd</dt>
        <dd>{list(cfg.Cmd)}</dd>
        {cfg.WorkingDir && (
          <>
            <dt>Working directory</dt>
            <dd>
              <code>{cfg.WorkingDir}</code>
            </dd>
          </>
        )}
        {cfg.User && (
          <>
            <dt>User</dt>
            <dd>
              <code>{cfg.User}</code>
            </dd>
          </>
        )}
        <dt>Exposed ports</dt>
        <dd>{cfg.ExposedPorts && Object.keys(cfg.ExposedPorts).length ? Object.keys(cfg.ExposedPorts).join(", ") : "—"}</dd>
      </dl>
      {cfg.Env && cfg.Env.length > 0 && (
        <>
          <h3>Environment</h3>
          <ul className="mono-list">
            {cfg.Env.map((e) => (
              <li key={e}>
                <code>{e}</code>
              </li>
            ))}
          </ul>
        </>
      )}
      {cfg.Labels && Object.keys(cfg.Labels).length > 0 && (
        <>
          <h3>Labels</h3>
          <dl className="facts">
            {Object.entries(cfg.Labels).map(([k, v]) => (
              <div key={k} className="pair">
                <dt>
                  <code>{k}</code>
                </dt>
                <dd>{v}</dd>
              </div>
            ))}
          </dl>
        </>
      )}
      {c.history && c.history.length > 0 && (
        <details>
          <summary>History ({c.history.length} steps)</summary>
          <ol className="mono-list">
            {c.history.map((h, i) => (
              <li key={i}>
                <code>{h.created_by ?? h.comment ?? ""}</code> {h.empty_layer && <span className="muted">(no layer)</span>}
              </li>
            ))}
          </ol>
        </details>
      )}
    </>
  );
}

function SameDigest({ repository, digest }: { repository: string; digest: string }) {
  const tags = useQuery(TagService.method.listTags, { repositoryName: repository, digest, pageSize: 100 });
  return (
    <>
      <h2>Tags on this digest</h2>
      {tags.isPending ? (
        <Loading what="tags" />
      ) : tags.isError ? (
        <ErrorView error={tags.error} />
      ) : tags.data.tags.length === 0 ? (
        <p className="muted">No tag points at this manifest (it is pullable by digest).</p>
      ) : (
        <ul className="inline-list">
          {tags.data.tags.map((t) => (
            <li key={t.id}>
              <Link to={paths.image(repository, t.name)}>{t.name}</Link>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

/**
 * Signatures, SBOMs and attestations that name this manifest as their subject (ImageService.ListReferrers).
 */
function Referrers({ repository, digest }: { repository: string; digest: string }) {
  const referrers = useQuery(ImageService.method.listReferrers, { repository, digest, pageSize: 100 });
  return (
    <>
      <h2>Referrers</h2>
      {referrers.isPending ? (
        <Loading what="referrers" />
      ) : referrers.isError ? (
        <ErrorView error={referrers.error} />
      ) : referrers.data.referrers.length === 0 ? (
        <p className="muted">No signatures, SBOMs or attestations refer to this manifest.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Artifact type</th>
              <th scope="col">Digest</th>
              <th scope="col">Size</th>
            </tr>
          </thead>
          <tbody>
            {referrers.data.referrers.map((r) => (
              <tr key={r.digest}>
                <td>{r.artifactType || r.mediaType}</td>
                <td>
                  <Link to={paths.image(repository, r.digest)}>{shortDigest(r.digest)}</Link>
                </td>
                <td>{formatBytes(r.sizeBytes)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {referrers.data?.nextPageToken ? <p className="muted">Only the first 100 referrers are shown.</p> : null}
    </>
  );
}
