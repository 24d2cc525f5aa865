// A repository's tags: sortable by push time or name, searchable, paged with the API's page tokens
// (never everything at once), with digest, media type, size, push time and an index's platforms;
// deleting a tag asks first, naming the tag and the digest it points at.
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { ImageService, type Platform } from "../../../gen/artifact/v1/image_pb.js";
import { RepositoryService } from "../../../gen/artifact/v1/repository_pb.js";
import { TagService, type Tag } from "../../../gen/artifact/v1/tag_pb.js";
import { useMe } from "../app.js";
import { Confirm, Copy, Empty, ErrorView, formatBytes, Loading, Pager, SearchBox, shortDigest, Time } from "../components.js";
import { Link, navigate, paths, useLocation, withQuery } from "../router.js";
import { Crumbs } from "./browse.js";

const PAGE_SIZE = 50;
const SORTS: Record<string, [string, string]> = {
  pushed: ["push_time desc", "Newest push first"],
  "pushed-asc": ["push_time", "Oldest push first"],
  name: ["name", "Name A→Z"],
  "name-desc": ["name desc", "Name Z→A"],
};

export const isIndex = (mediaType: string) => mediaType.endsWith("image.index.v1+json") || mediaType.endsWith("manifest.list.v2+json");
export const platformName = (p: Platform | undefined) => (p ? [p.os, p.architecture, p.variant].filter(Boolean).join("/") : "unknown");

export function Tags({ repository }: { repository: string }) {
  const me = useMe();
  const { path, query } = useLocation();
  const sort = SORTS[query.get("sort") ?? ""] ? query.get("sort")! : "pushed";
  const q = query.get("q") ?? "";
  const repo = useQuery(RepositoryService.method.lookupRepository, { name: repository });
  const list = useQuery(TagService.method.listTags, {
    repositoryName: repository,
    orderBy: SORTS[sort]![0],
    query: q,
    pageSize: PAGE_SIZE,
    pageToken: query.get("page") ?? "",
  });
  const [deleting, setDeleting] = useState<Tag>();
  const [registry, namespace] = repository.split("/");
  const canDelete = repo.data ? me.roles.canDelete({ registryId: repo.data.registryId, namespaceId: repo.data.namespaceId }) : false;
  return (
    <section>
      <Crumbs
        items={[
          ["Registries", paths.home()],
          [registry!, paths.registry(registry!)],
          [namespace!, paths.namespace(registry!, namespace!)],
          [repository.split("/").slice(2).join("/"), undefined],
        ]}
      />
      <h1>
        Tags of <span className="name">{repository}</span>
      </h1>
      {repo.data?.description && <p>{repo.data.description}</p>}
      <div className="toolbar">
        <SearchBox label="Search tags" placeholder="tag contains…" />
        <div className="field inline">
          <label htmlFor="tag-sort">Sort</label>
          <select
            id="tag-sort"
            value={sort}
            onChange={(e) =>
              navigate(withQuery(path, query, { sort: e.target.value === "pushed" ? undefined : e.target.value, page: undefined, back: undefined }))
            }
          >
            {Object.entries(SORTS).map(([key, [, label]]) => (
              <option key={key} value={key}>
                {label}
              </option>
            ))}
          </select>
        </div>
      </div>
      {list.isPending ? (
        <Loading what="tags" />
      ) : list.isError ? (
        <ErrorView error={list.error} retry={() => void list.refetch()} />
      ) : list.data.tags.length === 0 ? (
        <Empty>{q ? <p>No tag matches “{q}”.</p> : <p>No tags in this repository. Push one: docker push &lt;host&gt;/{repository}:1.0</p>}</Empty>
      ) : (
        <>
          <table className="tags">
            <caption className="visually-hidden">Tags, {SORTS[sort]![1]}</caption>
            <thead>
              <tr>
                <th scope="col">Tag</th>
                <th scope="col">Digest</th>
                <th scope="col">Type</th>
                <th scope="col">Size</th>
                <th scope="col">Pushed</th>
                <th scope="col">Platforms</th>
                {canDelete && (
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {list.data.tags.map((t) => (
                <tr key={t.id}>
                  <td>
                    <Link to={paths.image(repository, t.name)}>{t.name}</Link>
                  </td>
                  <td data-label="Digest">
                    <Copy text={t.digest} display={shortDigest(t.digest)} label={`digest of ${t.name}`} />
                  </td>
                  <td data-label="Type" className="small-text">
                    {mediaTypeLabel(t.mediaType)}
                  </td>
                  <td data-label="Size">{formatBytes(t.sizeBytes)}</td>
                  <td data-label="Pushed">
                    <Time t={t.pushTime} exact />
                  </td>
                  <td data-label="Platforms">
                    {isIndex(t.mediaType) ? <Platforms repository={repository} digest={t.digest} /> : <span className="muted">—</span>}
                  </td>
                  {canDelete && (
                    <td>
                      <button type="button" className="small danger" onClick={() => setDeleting(t)} aria-label={`Delete tag ${t.name}`}>
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
          <Pager nextToken={list.data.nextPageToken} total={list.data.totalSize} shown={list.data.tags.length} />
        </>
      )}
      {deleting && <DeleteTag tag={deleting} onDone={() => setDeleting(undefined)} />}
    </section>
  );
}

export function mediaTypeLabel(mediaType: string): string {
  if (mediaType === "application/vnd.oci.image.manifest.v1+json") return "OCI image";
  if (mediaType === "application/vnd.oci.image.index.v1+json") return "OCI index";
  if (mediaType === "application/vnd.docker.distribution.manifest.v2+json") return "Docker image";
  if (mediaType === "application/vnd.docker.distribution.manifest.list.v2+json") return "Docker manifest list";
  return mediaType;
}

function Platforms({ repository, digest }: { repository: string; digest: string }) {
  const m = useQuery(ImageService.method.getManifest, { repository, reference: digest, metadataOnly: true }, { staleTime: Infinity });
  if (m.isPending) return <span className="muted">…</span>;
  if (m.isError) return <span className="muted">?</span>;
  return <span>{(m.data.summary?.manifests ?? []).map((d) => platformName(d.platform)).join(", ")}</span>;
}

export function DeleteTag({ tag, onDone }: { tag: Tag; onDone: (deleted: boolean) => void }) {
  const client = useQueryClient();
  const m = useMutation(TagService.method.deleteTag);
  return (
    <Confirm
      title={`Delete tag ${tag.fullName}?`}
      action="Delete tag"
      busy={m.isPending}
      error={m.error ?? undefined}
      onCancel={() => onDone(false)}
      onConfirm={() => m.mutate({ id: tag.id, etag: tag.etag }, { onSuccess: () => (void client.invalidateQueries(), onDone(true)) })}
    >
      <p>
        The tag <strong>{tag.fullName}</strong> goes; it points at <code>{tag.digest}</code> ({formatBytes(tag.sizeBytes)}). Pulls of this tag will fail. The
        image stays pullable by digest while another tag or a referrer keeps it, and until garbage collection removes it otherwise.
      </p>
    </Confirm>
  );
}
