// Registries → namespaces → repositories: each a searchable, paged list, with create, edit and
// delete where the caller's roles allow them.
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { NamespaceService, type Namespace } from "../../../gen/artifact/v1/namespace_pb.js";
import { RegistryKind, RegistryService, type Registry } from "../../../gen/artifact/v1/registry_pb.js";
import { RepositoryService, type Repository } from "../../../gen/artifact/v1/repository_pb.js";
import { useMe } from "../app.js";
import { Confirm, Empty, ErrorView, Field, FormDialog, Loading, Pager, SearchBox, Time } from "../components.js";
import { Link, navigate, paths, useLocation } from "../router.js";

const PAGE_SIZE = 50;

export function Crumbs({ items }: { items: [string, string | undefined][] }) {
  return (
    <nav aria-label="Breadcrumb" className="crumbs">
      <ol>
        {items.map(([label, to], i) => (
          <li key={i}>{to && i < items.length - 1 ? <Link to={to}>{label}</Link> : <span aria-current="page">{label}</span>}</li>
        ))}
      </ol>
    </nav>
  );
}

export function Registries() {
  const me = useMe();
  const { query } = useLocation();
  const q = query.get("q") ?? "";
  const list = useQuery(RegistryService.method.listRegistries, { query: q, pageSize: PAGE_SIZE, pageToken: query.get("page") ?? "" });
  const [editing, setEditing] = useState<Registry | "new">();
  const [deleting, setDeleting] = useState<Registry>();
  return (
    <section>
      <Crumbs items={[["Registries", undefined]]} />
      <div className="heading">
        <h1>Registries</h1>
        {me.roles.administrator && (
          <button type="button" className="primary" onClick={() => setEditing("new")}>
            New registry
          </button>
        )}
      </div>
      <SearchBox label="Search registries" placeholder="name contains…" />
      {list.isPending ? (
        <Loading what="registries" />
      ) : list.isError ? (
        <ErrorView error={list.error} retry={() => void list.refetch()} />
      ) : list.data.registries.length === 0 ? (
        <Empty>
          {q ? (
            <p>No registry matches “{q}”.</p>
          ) : (
            <p>
              No registries yet.{" "}
              {me.roles.administrator
                ? "Create a HOSTED registry to push images to, or a REMOTE one to mirror another registry."
                : "Ask an administrator to create one, or to give you a role on one."}
            </p>
          )}
        </Empty>
      ) : (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col">Description</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.registries.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Link to={paths.registry(r.name)}>{r.name}</Link>
                  </td>
                  <td>
                    {r.kind === RegistryKind.REMOTE ? "REMOTE" : "HOSTED"}
                    {r.kind === RegistryKind.REMOTE && <div className="muted small-text">{r.url}</div>}
                  </td>
                  <td>{r.description}</td>
                  <td>
                    <Time t={r.createTime} />
                  </td>
                  <td className="row-actions">
                    {r.kind === RegistryKind.REMOTE && me.roles.canDelete({ registryId: r.id }) && <Link to={paths.sync(r.name)}>Test &amp; sync</Link>}
                    {me.roles.administrator && (
                      <>
                        <button type="button" className="small" onClick={() => setEditing(r)} aria-label={`Edit registry ${r.name}`}>
                          Edit
                        </button>
                        <button type="button" className="small danger" onClick={() => setDeleting(r)} aria-label={`Delete registry ${r.name}`}>
                          Delete
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager nextToken={list.data.nextPageToken} total={list.data.totalSize} shown={list.data.registries.length} />
        </>
      )}
      {editing && <RegistryForm registry={editing === "new" ? undefined : editing} onDone={() => setEditing(undefined)} />}
      {deleting && <DeleteRegistry registry={deleting} onDone={() => setDeleting(undefined)} />}
    </section>
  );
}

function RegistryForm({ registry, onDone }: { registry?: Registry; onDone: () => void }) {
  const client = useQueryClient();
  const [name, setName] = useState(registry?.name ?? "");
  const [kind, setKind] = useState(registry?.kind ?? RegistryKind.HOSTED);
  const [url, setUrl] = useState(registry?.url ?? "");
  const [description, setDescription] = useState(registry?.description ?? "");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const create = useMutation(RegistryService.method.createRegistry);
  const update = useMutation(RegistryService.method.updateRegistry);
  const m = registry ? update : create;
  const submit = () => {
    const credential = username || password ? { kind: { case: "basic" as const, value: { username, password } } } : undefined;
    const body = { name, kind, url: kind === RegistryKind.REMOTE ? url : "", description, credential };
    const done = { onSuccess: () => (void client.invalidateQueries(), onDone()) };
    if (registry) {
      const mask = ["name", "description", ...(kind === RegistryKind.REMOTE ? ["url"] : []), ...(credential ? ["credential"] : [])];
      update.mutate({ registry: { ...body, id: registry.id, etag: registry.etag }, updateMask: { paths: mask } }, done);
    } else create.mutate({ registry: body }, done);
  };
  return (
    <FormDialog
      title={registry ? `Edit registry ${registry.name}` : "New registry"}
      submit={registry ? "Save" : "Create"}
      onSubmit={submit}
      onCancel={onDone}
      busy={m.isPending}
      error={m.error ?? undefined}
    >
      <Field label="Name">{(id) => <input id={id} required value={name} onChange={(e) => setName(e.target.value)} />}</Field>
      <Field label="Kind">
        {(id) => (
          <select id={id} value={kind} disabled={registry !== undefined} onChange={(e) => setKind(Number(e.target.value))}>
            <option value={RegistryKind.HOSTED}>HOSTED (stores images pushed here)</option>
            <option value={RegistryKind.REMOTE}>REMOTE (mirrors another registry)</option>
          </select>
        )}
      </Field>
      {kind === RegistryKind.REMOTE && (
        <>
          <Field label="Upstream URL">
            {(id) => <input id={id} type="url" required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://registry.example.com" />}
          </Field>
          <Field label="Upstream user name" hint={registry?.hasCredential ? "A credential is stored; fill both fields to replace it." : "Optional."}>
            {(id) => <input id={id} autoComplete="off" value={username} onChange={(e) => setUsername(e.target.value)} />}
          </Field>
          <Field label="Upstream password or token">
            {(id) => <input id={id} type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />}
          </Field>
        </>
      )}
      <Field label="Description">{(id) => <input id={id} value={description} onChange={(e) => setDescription(e.target.value)} />}</Field>
    </FormDialog>
  );
}

function DeleteRegistry({ registry, onDone }: { registry: Registry; onDone: () => void }) {
  const client = useQueryClient();
  const m = useMutation(RegistryService.method.deleteRegistry);
  return (
    <Confirm
      title={`Delete registry ${registry.name}?`}
      action="Delete registry"
      busy={m.isPending}
      error={m.error ?? undefined}
      onCancel={onDone}
      onConfirm={() => m.mutate({ id: registry.id, etag: registry.etag, force: true }, { onSuccess: () => (void client.invalidateQueries(), onDone()) })}
    >
      <p>
        This deletes <strong>{registry.name}</strong> with every namespace, repository and tag in it. Images no tag refers to are removed by the next garbage
        collection.
      </p>
    </Confirm>
  );
}

export function Namespaces({ registry }: { registry: string }) {
  const me = useMe();
  const { query } = useLocation();
  const q = query.get("q") ?? "";
  const reg = useQuery(RegistryService.method.lookupRegistry, { name: registry });
  const list = useQuery(NamespaceService.method.listNamespaces, { registryName: registry, query: q, pageSize: PAGE_SIZE, pageToken: query.get("page") ?? "" });
  const [editing, setEditing] = useState<Namespace | "new">();
  const [deleting, setDeleting] = useState<Namespace>();
  const registryId = reg.data?.id;
  return (
    <section>
      <Crumbs
        items={[
          ["Registries", paths.home()],
          [registry, undefined],
        ]}
      />
      <div className="heading">
        <h1>
          Namespaces of <span className="name">{registry}</span>
        </h1>
        {registryId && reg.data?.kind === RegistryKind.REMOTE && me.roles.canDelete({ registryId }) && (
          <Link to={paths.sync(registry)}>Test connection &amp; sync</Link>
        )}
        {registryId && me.roles.canWrite({ registryId }) && (
          <button type="button" className="primary" onClick={() => setEditing("new")}>
            New namespace
          </button>
        )}
      </div>
      <SearchBox label="Search namespaces" placeholder="name contains…" />
      {list.isPending ? (
        <Loading what="namespaces" />
      ) : list.isError ? (
        <ErrorView error={list.error} retry={() => void list.refetch()} />
      ) : list.data.namespaces.length === 0 ? (
        <Empty>
          {q ? <p>No namespace matches “{q}”.</p> : <p>No namespaces yet. Pushing an image (docker push host/{registry}/team/app:1.0) creates one.</p>}
        </Empty>
      ) : (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Visibility</th>
                <th scope="col">Description</th>
                <th scope="col">Updated</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.namespaces.map((n) => (
                <tr key={n.id}>
                  <td>
                    <Link to={paths.namespace(registry, n.name)}>{n.name}</Link>
                  </td>
                  <td>{n.public ? "public" : "private"}</td>
                  <td>{n.description}</td>
                  <td>
                    <Time t={n.updateTime} />
                  </td>
                  <td className="row-actions">
                    {me.roles.canWrite({ registryId: n.registryId, namespaceId: n.id }) && (
                      <button type="button" className="small" onClick={() => setEditing(n)} aria-label={`Edit namespace ${n.name}`}>
                        Edit
                      </button>
                    )}
                    {me.roles.canDelete({ registryId: n.registryId, namespaceId: n.id }) && (
                      <button type="button" className="small danger" onClick={() => setDeleting(n)} aria-label={`Delete namespace ${n.name}`}>
                        Delete
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager nextToken={list.data.nextPageToken} total={list.data.totalSize} shown={list.data.namespaces.length} />
        </>
      )}
      {editing && registryId && (
        <NamespaceForm registryId={registryId} namespace={editing === "new" ? undefined : editing} onDone={() => setEditing(undefined)} />
      )}
      {deleting && (
        <DeleteThing
          title={`Delete namespace ${deleting.fullName}?`}
          what={
            <>
              every repository and tag in <strong>{deleting.fullName}</strong>
            </>
          }
          method="namespace"
          id={deleting.id}
          etag={deleting.etag}
          onDone={() => setDeleting(undefined)}
        />
      )}
    </section>
  );
}

function NamespaceForm({ registryId, namespace, onDone }: { registryId: string; namespace?: Namespace; onDone: () => void }) {
  const me = useMe();
  const client = useQueryClient();
  const [name, setName] = useState(namespace?.name ?? "");
  const [description, setDescription] = useState(namespace?.description ?? "");
  const [isPublic, setPublic] = useState(namespace?.public ?? false);
  const create = useMutation(NamespaceService.method.createNamespace);
  const update = useMutation(NamespaceService.method.updateNamespace);
  const m = namespace ? update : create;
  const canPublish = me.roles.canDelete({ registryId, namespaceId: namespace?.id });
  const submit = () => {
    const done = { onSuccess: () => (void client.invalidateQueries(), onDone()) };
    if (namespace)
      update.mutate(
        {
          namespace: { id: namespace.id, etag: namespace.etag, name, description, public: isPublic },
          updateMask: { paths: ["name", "description", ...(canPublish ? ["public"] : [])] },
        },
        done,
      );
    else create.mutate({ namespace: { registryId, name, description, public: isPublic } }, done);
  };
  return (
    <FormDialog
      title={namespace ? `Edit namespace ${namespace.name}` : "New namespace"}
      submit={namespace ? "Save" : "Create"}
      onSubmit={submit}
      onCancel={onDone}
      busy={m.isPending}
      error={m.error ?? undefined}
    >
      <Field label="Name">{(id) => <input id={id} required value={name} onChange={(e) => setName(e.target.value)} />}</Field>
      <Field label="Description">{(id) => <input id={id} value={description} onChange={(e) => setDescription(e.target.value)} />}</Field>
      {canPublish && (
        <label className="check">
          <input type="checkbox" checked={isPublic} onChange={(e) => setPublic(e.target.checked)} /> Public (anyone may pull, without signing in)
        </label>
      )}
    </FormDialog>
  );
}

export function DeleteThing({
  title,
  what,
  method,
  id,
  etag,
  onDone,
}: {
  title: string;
  what: React.ReactNode;
  method: "namespace" | "repository";
  id: string;
  etag: string;
  onDone: () => void;
}) {
  const client = useQueryClient();
  const ns = useMutation(NamespaceService.method.deleteNamespace);
  const repo = useMutation(RepositoryService.method.deleteRepository);
  const m = method === "namespace" ? ns : repo;
  const done = { onSuccess: () => (void client.invalidateQueries(), onDone()) };
  return (
    <Confirm
      title={title}
      action="Delete"
      busy={m.isPending}
      error={m.error ?? undefined}
      onCancel={onDone}
      onConfirm={() => (method === "namespace" ? ns.mutate({ id, etag, force: true }, done) : repo.mutate({ id, etag, force: true }, done))}
    >
      <p>This deletes {what}. Images no tag refers to any more are removed by the next garbage collection.</p>
    </Confirm>
  );
}

export function Repositories({ registry, namespace }: { registry: string; namespace: string }) {
  const me = useMe();
  const { query } = useLocation();
  const q = query.get("q") ?? "";
  const full = `${registry}/${namespace}`;
  const ns = useQuery(NamespaceService.method.lookupNamespace, { name: full });
  const list = useQuery(RepositoryService.method.listRepositories, { namespaceName: full, query: q, pageSize: PAGE_SIZE, pageToken: query.get("page") ?? "" });
  const [editing, setEditing] = useState<Repository | "new">();
  const [deleting, setDeleting] = useState<Repository>();
  const where = ns.data ? { registryId: ns.data.registryId, namespaceId: ns.data.id } : undefined;
  return (
    <section>
      <Crumbs
        items={[
          ["Registries", paths.home()],
          [registry, paths.registry(registry)],
          [namespace, undefined],
        ]}
      />
      <div className="heading">
        <h1>
          Repositories in <span className="name">{full}</span>
        </h1>
        {where && me.roles.canWrite(where) && (
          <button type="button" className="primary" onClick={() => setEditing("new")}>
            New repository
          </button>
        )}
      </div>
      <SearchBox label="Search repositories" placeholder="name contains…" />
      {list.isPending ? (
        <Loading what="repositories" />
      ) : list.isError ? (
        <ErrorView error={list.error} retry={() => void list.refetch()} />
      ) : list.data.repositories.length === 0 ? (
        <Empty>{q ? <p>No repository matches “{q}”.</p> : <p>No repositories yet. Push an image to {full}/&lt;name&gt;:&lt;tag&gt; to create one.</p>}</Empty>
      ) : (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Description</th>
                <th scope="col">Updated</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.repositories.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Link to={paths.repository(r.fullName)}>{r.name}</Link>
                  </td>
                  <td>{r.description}</td>
                  <td>
                    <Time t={r.updateTime} />
                  </td>
                  <td className="row-actions">
                    {where && me.roles.canWrite(where) && (
                      <button type="button" className="small" onClick={() => setEditing(r)} aria-label={`Edit repository ${r.name}`}>
                        Edit
                      </button>
                    )}
                    {where && me.roles.canDelete(where) && (
                      <button type="button" className="small danger" onClick={() => setDeleting(r)} aria-label={`Delete repository ${r.name}`}>
                        Delete
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager nextToken={list.data.nextPageToken} total={list.data.totalSize} shown={list.data.repositories.length} />
        </>
      )}
      {editing && ns.data && (
        <RepositoryForm namespaceId={ns.data.id} repository={editing === "new" ? undefined : editing} onDone={() => setEditing(undefined)} />
      )}
      {deleting && (
        <DeleteThing
          title={`Delete repository ${deleting.fullName}?`}
          what={
            <>
              the repository <strong>{deleting.fullName}</strong> and all its tags
            </>
          }
          method="repository"
          id={deleting.id}
          etag={deleting.etag}
          onDone={() => setDeleting(undefined)}
        />
      )}
    </section>
  );
}

function RepositoryForm({ namespaceId, repository, onDone }: { namespaceId: string; repository?: Repository; onDone: () => void }) {
  const client = useQueryClient();
  const [name, setName] = useState(repository?.name ?? "");
  const [description, setDescription] = useState(repository?.description ?? "");
  const create = useMutation(RepositoryService.method.createRepository);
  const update = useMutation(RepositoryService.method.updateRepository);
  const m = repository ? update : create;
  const submit = () => {
    const done = {
      onSuccess: (r: Repository) => {
        void client.invalidateQueries();
        onDone();
        if (!repository) navigate(paths.repository(r.fullName));
      },
    };
    if (repository)
      update.mutate({ repository: { id: repository.id, etag: repository.etag, name, description }, updateMask: { paths: ["name", "description"] } }, done);
    else create.mutate({ repository: { namespaceId, name, description } }, done);
  };
  return (
    <FormDialog
      title={repository ? `Edit repository ${repository.name}` : "New repository"}
      submit={repository ? "Save" : "Create"}
      onSubmit={submit}
      onCancel={onDone}
      busy={m.isPending}
      error={m.error ?? undefined}
    >
      <Field label="Name">{(id) => <input id={id} required value={name} onChange={(e) => setName(e.target.value)} />}</Field>
      <Field label="Description">{(id) => <input id={id} value={description} onChange={(e) => setDescription(e.target.value)} />}</Field>
    </FormDialog>
  );
}
