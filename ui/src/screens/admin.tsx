// Who am I, my API tokens, and the global admin's screens: accounts (users and robots), role
// bindings, garbage collection (dry run first) and the audit log.
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { createClient } from "@connectrpc/connect";
import { useTransport } from "@connectrpc/connect-query";
import { skipToken, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { AccountKind, AccountService, type Account } from "../../../gen/artifact/v1/account_pb.js";
import { AuditOutcome, AuditService } from "../../../gen/artifact/v1/audit_pb.js";
import { GarbageCollectionService, type RunGarbageCollectionResponse } from "../../../gen/artifact/v1/garbage_collection_pb.js";
import { NamespaceService } from "../../../gen/artifact/v1/namespace_pb.js";
import { RegistryService } from "../../../gen/artifact/v1/registry_pb.js";
import { Role, RoleBindingService, RoleScope, type RoleBinding } from "../../../gen/artifact/v1/role_binding_pb.js";
import { TokenService } from "../../../gen/artifact/v1/token_pb.js";
import { useMe } from "../app.js";
import { Confirm, Copy, Empty, ErrorView, Field, FormDialog, formatBytes, Loading, Pager, SearchBox, Time } from "../components.js";
import { useLocation } from "../router.js";

const roleName = (r: Role) => Role[r]?.toLowerCase() ?? "?";
const scopeName = (b: RoleBinding) => (b.scope === RoleScope.GLOBAL ? "everywhere" : `${RoleScope[b.scope]?.toLowerCase()} ${b.scopeName || b.scopeId}`);

export function Me() {
  const me = useMe();
  return (
    <section>
      <h1>Who am I</h1>
      <dl className="facts">
        <dt>Account</dt>
        <dd>{me.name}</dd>
        <dt>Signed in with</dt>
        <dd>{me.authenticatedBy === "token" ? "an API token" : me.authenticatedBy}</dd>
      </dl>
      <h2>Roles</h2>
      {me.roles.bindings.length === 0 ? (
        <Empty>
          <p>No roles: you see public namespaces only. Ask an administrator for a role.</p>
        </Empty>
      ) : (
        <ul>
          {me.roles.bindings.map((b) => (
            <li key={b.id}>
              {roleName(b.role)} — {scopeName(b)}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function Tokens() {
  const me = useMe();
  const client = useQueryClient();
  const accounts = useQuery(AccountService.method.listAccounts, me.roles.administrator ? { pageSize: 1000 } : skipToken);
  const [accountId, setAccountId] = useState("");
  const { query } = useLocation();
  const list = useQuery(TokenService.method.listTokens, { pageSize: 50, pageToken: query.get("page") ?? "", orderBy: "create_time desc" });
  const create = useMutation(TokenService.method.createToken);
  const revoke = useMutation(TokenService.method.revokeToken);
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState("");
  const [days, setDays] = useState("90");
  return (
    <section>
      <div className="heading">
        <h1>API tokens</h1>
        <button type="button" className="primary" onClick={() => (create.reset(), setCreating(true))}>
          New token
        </button>
      </div>
      <p>Tokens sign in CLIs and CI: as `Authorization: Bearer` on the API, or as the password for docker login.</p>
      {create.data && (
        <div className="state notice" role="status">
          <strong>New token “{create.data.token?.name}”</strong>
          <p>Copy it now: it is shown only once.</p>
          <Copy text={create.data.secret} label="the new token" />
        </div>
      )}
      {list.isPending ? (
        <Loading what="tokens" />
      ) : list.isError ? (
        <ErrorView error={list.error} retry={() => void list.refetch()} />
      ) : list.data.tokens.length === 0 ? (
        <Empty>
          <p>No tokens.</p>
        </Empty>
      ) : (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Account</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
                <th scope="col">State</th>
              </tr>
            </thead>
            <tbody>
              {list.data.tokens.map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td>{t.accountName}</td>
                  <td>
                    <Time t={t.createTime} />
                  </td>
                  <td>
                    <Time t={t.lastUseTime} />
                  </td>
                  <td>{t.expireTime ? <Time t={t.expireTime} /> : "never"}</td>
                  <td>
                    {t.revokeTime ? (
                      "revoked"
                    ) : (
                      <button
                        type="button"
                        className="small danger"
                        aria-label={`Revoke token ${t.name}`}
                        onClick={() => revoke.mutate({ id: t.id }, { onSuccess: () => void client.invalidateQueries() })}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager nextToken={list.data.nextPageToken} total={list.data.totalSize} shown={list.data.tokens.length} />
        </>
      )}
      {revoke.isError && <ErrorView error={revoke.error} />}
      {creating && (
        <FormDialog
          title="New API token"
          submit="Create"
          busy={create.isPending}
          error={create.error ?? undefined}
          onCancel={() => setCreating(false)}
          onSubmit={() =>
            create.mutate(
              { accountId, name, expiration: days ? { case: "ttl", value: { seconds: BigInt(Number(days) * 86400) } } : { case: undefined } },
              { onSuccess: () => (void client.invalidateQueries(), setCreating(false), setName("")) },
            )
          }
        >
          {me.roles.administrator && (
            <Field label="For account" hint="A robot's token is how CI signs in.">
              {(id) => (
                <select id={id} value={accountId} onChange={(e) => setAccountId(e.target.value)}>
                  <option value="">me ({me.name})</option>
                  {accounts.data?.accounts
                    .filter((a) => a.name !== me.name)
                    .map((a) => (
                      <option key={a.id} value={a.id}>
                        {a.name} ({a.kind === AccountKind.ROBOT ? "robot" : "user"})
                      </option>
                    ))}
                </select>
              )}
            </Field>
          )}
          <Field label="What it is for">
            {(id) => <input id={id} required value={name} onChange={(e) => setName(e.target.value)} placeholder="ci-deploy" />}
          </Field>
          <Field label="Expires after (days, empty: never)">
            {(id) => <input id={id} type="number" min="1" value={days} onChange={(e) => setDays(e.target.value)} />}
          </Field>
        </FormDialog>
      )}
    </section>
  );
}

export function Accounts() {
  const client = useQueryClient();
  const { query } = useLocation();
  const list = useQuery(AccountService.method.listAccounts, { query: query.get("q") ?? "", pageSize: 50, pageToken: query.get("page") ?? "" });
  const create = useMutation(AccountService.method.createAccount);
  const update = useMutation(AccountService.method.updateAccount);
  const del = useMutation(AccountService.method.deleteAccount);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<Account>();
  const [name, setName] = useState("");
  const [kind, setKind] = useState(AccountKind.USER);
  const [password, setPassword] = useState("");
  return (
    <section>
      <div className="heading">
        <h1>Accounts</h1>
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          New account
        </button>
      </div>
      <SearchBox label="Search accounts" placeholder="name contains…" />
      {list.isPending ? (
        <Loading what="accounts" />
      ) : list.isError ? (
        <ErrorView error={list.error} retry={() => void list.refetch()} />
      ) : (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col">Password</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.accounts.map((a) => (
                <tr key={a.id}>
                  <td>
                    {a.name}
                    {a.disabled && <span className="badge">disabled</span>}
                  </td>
                  <td>{a.kind === AccountKind.ROBOT ? "robot" : "user"}</td>
                  <td>{a.hasPassword ? "set" : "—"}</td>
                  <td>
                    <Time t={a.createTime} />
                  </td>
                  <td className="row-actions">
                    <button
                      type="button"
                      className="small"
                      aria-label={`${a.disabled ? "Enable" : "Disable"} account ${a.name}`}
                      onClick={() =>
                        update.mutate(
                          { account: { id: a.id, disabled: !a.disabled }, updateMask: { paths: ["disabled"] } },
                          { onSuccess: () => void client.invalidateQueries() },
                        )
                      }
                    >
                      {a.disabled ? "Enable" : "Disable"}
                    </button>
                    <button type="button" className="small danger" aria-label={`Delete account ${a.name}`} onClick={() => setDeleting(a)}>
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager nextToken={list.data.nextPageToken} total={list.data.totalSize} shown={list.data.accounts.length} />
        </>
      )}
      {update.isError && <ErrorView error={update.error} />}
      {creating && (
        <FormDialog
          title="New account"
          submit="Create"
          busy={create.isPending}
          error={create.error ?? undefined}
          onCancel={() => setCreating(false)}
          onSubmit={() =>
            create.mutate(
              { account: { name, kind, password: kind === AccountKind.USER ? password : "" } },
              { onSuccess: () => (void client.invalidateQueries(), setCreating(false), setName(""), setPassword("")) },
            )
          }
        >
          <Field label="Name">{(id) => <input id={id} required value={name} onChange={(e) => setName(e.target.value)} />}</Field>
          <Field label="Kind">
            {(id) => (
              <select id={id} value={kind} onChange={(e) => setKind(Number(e.target.value))}>
                <option value={AccountKind.USER}>User (a person)</option>
                <option value={AccountKind.ROBOT}>Robot (CI, API tokens only)</option>
              </select>
            )}
          </Field>
          {kind === AccountKind.USER && (
            <Field label="Password" hint="10 characters or more; optional (tokens only without).">
              {(id) => <input id={id} type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />}
            </Field>
          )}
        </FormDialog>
      )}
      {deleting && (
        <Confirm
          title={`Delete account ${deleting.name}?`}
          action="Delete account"
          busy={del.isPending}
          error={del.error ?? undefined}
          onCancel={() => setDeleting(undefined)}
          onConfirm={() => del.mutate({ id: deleting.id }, { onSuccess: () => (void client.invalidateQueries(), setDeleting(undefined)) })}
        >
          <p>
            The account <strong>{deleting.name}</strong> goes with its tokens and role bindings. Audit events keep its name.
          </p>
        </Confirm>
      )}
    </section>
  );
}

export function Bindings() {
  const client = useQueryClient();
  const { query } = useLocation();
  const list = useQuery(RoleBindingService.method.listRoleBindings, { pageSize: 50, pageToken: query.get("page") ?? "" });
  const accounts = useQuery(AccountService.method.listAccounts, { pageSize: 1000 });
  const create = useMutation(RoleBindingService.method.createRoleBinding);
  const del = useMutation(RoleBindingService.method.deleteRoleBinding);
  const [creating, setCreating] = useState(false);
  const [accountId, setAccountId] = useState("");
  const [role, setRole] = useState(Role.READER);
  const [scope, setScope] = useState(RoleScope.GLOBAL);
  const [scopeName_, setScopeName] = useState("");
  const transport = useTransport();
  const [lookupError, setLookupError] = useState<unknown>();
  return (
    <section>
      <div className="heading">
        <h1>Role bindings</h1>
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          New binding
        </button>
      </div>
      {list.isPending ? (
        <Loading what="role bindings" />
      ) : list.isError ? (
        <ErrorView error={list.error} retry={() => void list.refetch()} />
      ) : list.data.roleBindings.length === 0 ? (
        <Empty>
          <p>No role bindings you may manage.</p>
        </Empty>
      ) : (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Account</th>
                <th scope="col">Role</th>
                <th scope="col">Where</th>
                <th scope="col">Since</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.roleBindings.map((b) => (
                <tr key={b.id}>
                  <td>{b.accountName}</td>
                  <td>{roleName(b.role)}</td>
                  <td>{scopeName(b)}</td>
                  <td>
                    <Time t={b.createTime} />
                  </td>
                  <td>
                    <button
                      type="button"
                      className="small danger"
                      aria-label={`Remove ${roleName(b.role)} role of ${b.accountName}`}
                      onClick={() => del.mutate({ id: b.id }, { onSuccess: () => void client.invalidateQueries() })}
                    >
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager nextToken={list.data.nextPageToken} total={list.data.totalSize} shown={list.data.roleBindings.length} />
        </>
      )}
      {del.isError && <ErrorView error={del.error} />}
      {creating && (
        <FormDialog
          title="New role binding"
          submit="Create"
          busy={create.isPending}
          error={lookupError ?? create.error ?? undefined}
          onCancel={() => setCreating(false)}
          onSubmit={() => {
            setLookupError(undefined);
            // The scope by name (`local`, `local/team`): its id is what the binding stores.
            const scopeId =
              scope === RoleScope.GLOBAL
                ? Promise.resolve("")
                : scope === RoleScope.REGISTRY
                  ? createClient(RegistryService, transport)
                      .lookupRegistry({ name: scopeName_.trim() })
                      .then((r) => r.id)
                  : createClient(NamespaceService, transport)
                      .lookupNamespace({ name: scopeName_.trim() })
                      .then((n) => n.id);
            scopeId.then(
              (id) =>
                create.mutate(
                  { roleBinding: { accountId, role, scope, scopeId: id } },
                  { onSuccess: () => (void client.invalidateQueries(), setCreating(false)) },
                ),
              setLookupError,
            );
          }}
        >
          <Field label="Account">
            {(id) => (
              <select id={id} required value={accountId} onChange={(e) => setAccountId(e.target.value)}>
                <option value="">Choose…</option>
                {accounts.data?.accounts.map((a) => (
                  <option key={a.id} value={a.id}>
                    {a.name}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Role">
            {(id) => (
              <select id={id} value={role} onChange={(e) => setRole(Number(e.target.value))}>
                <option value={Role.READER}>reader (pull, browse)</option>
                <option value={Role.WRITER}>writer (push)</option>
                <option value={Role.ADMIN}>admin (delete, manage)</option>
              </select>
            )}
          </Field>
          <Field label="Where">
            {(id) => (
              <select id={id} value={scope} onChange={(e) => setScope(Number(e.target.value))}>
                <option value={RoleScope.GLOBAL}>everywhere</option>
                <option value={RoleScope.REGISTRY}>one registry</option>
                <option value={RoleScope.NAMESPACE}>one namespace</option>
              </select>
            )}
          </Field>
          {scope !== RoleScope.GLOBAL && (
            <Field label={scope === RoleScope.REGISTRY ? "Registry name" : "Namespace (registry/namespace)"}>
              {(id) => (
                <input
                  id={id}
                  required
                  value={scopeName_}
                  placeholder={scope === RoleScope.REGISTRY ? "local" : "local/team"}
                  onChange={(e) => setScopeName(e.target.value)}
                />
              )}
            </Field>
          )}
        </FormDialog>
      )}
    </section>
  );
}

export function GarbageCollection() {
  const gc = useMutation(GarbageCollectionService.method.runGarbageCollection);
  const [dry, setDry] = useState<RunGarbageCollectionResponse>();
  const [confirming, setConfirming] = useState(false);
  return (
    <section>
      <h1>Garbage collection</h1>
      <p>Removes manifests no tag or index refers to, blobs no manifest refers to, and expired uploads. A dry run shows what would go first.</p>
      <div className="actions-row">
        <button type="button" onClick={() => gc.mutate({ dryRun: true }, { onSuccess: (r) => setDry(r) })} disabled={gc.isPending}>
          {gc.isPending ? "Working…" : "Dry run"}
        </button>
        <button type="button" className="danger" disabled={!dry || gc.isPending} onClick={() => setConfirming(true)}>
          Collect garbage
        </button>
      </div>
      {gc.isError && <ErrorView error={gc.error} />}
      {gc.data && <GcReport r={gc.data} />}
      {confirming && dry && (
        <Confirm
          title="Collect garbage now?"
          action="Collect"
          onCancel={() => setConfirming(false)}
          onConfirm={() => (setConfirming(false), gc.mutate({ dryRun: false }, { onSuccess: () => setDry(undefined) }))}
        >
          <p>
            The dry run found {String(dry.manifestsDeleted)} manifests and {String(dry.blobsDeleted)} blobs to delete ({formatBytes(dry.bytesFreed)}). This
            cannot be undone.
          </p>
        </Confirm>
      )}
    </section>
  );
}

function GcReport({ r }: { r: RunGarbageCollectionResponse }) {
  return (
    <div aria-live="polite">
      <h2>{r.dryRun ? "Dry run: what would go" : "Collected"}</h2>
      <dl className="facts">
        <dt>Manifests</dt>
        <dd>{String(r.manifestsDeleted)}</dd>
        <dt>Blobs</dt>
        <dd>{String(r.blobsDeleted)}</dd>
        <dt>Space {r.dryRun ? "to come back" : "freed"}</dt>
        <dd>{formatBytes(r.bytesFreed)}</dd>
        <dt>Expired uploads</dt>
        <dd>{String(r.uploadsExpired)}</dd>
        <dt>Took</dt>
        <dd>{String(r.durationMs)} ms</dd>
      </dl>
      {r.sampleDigests.length > 0 && (
        <details>
          <summary>Some of the digests ({r.sampleDigests.length})</summary>
          <ul className="mono-list">
            {r.sampleDigests.map((d) => (
              <li key={d}>
                <code>{d}</code>
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

export function Audit() {
  const { query } = useLocation();
  const list = useQuery(AuditService.method.listAuditEvents, {
    actor: query.get("q") ?? "",
    pageSize: 50,
    pageToken: query.get("page") ?? "",
    orderBy: "event_time desc",
  });
  return (
    <section>
      <h1>Audit log</h1>
      <SearchBox label="Actor" placeholder="account name" />
      {list.isPending ? (
        <Loading what="audit events" />
      ) : list.isError ? (
        <ErrorView error={list.error} retry={() => void list.refetch()} />
      ) : list.data.auditEvents.length === 0 ? (
        <Empty>
          <p>No audit events.</p>
        </Empty>
      ) : (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Actor</th>
                <th scope="col">Action</th>
                <th scope="col">Resource</th>
                <th scope="col">Outcome</th>
                <th scope="col">From</th>
              </tr>
            </thead>
            <tbody>
              {list.data.auditEvents.map((e) => (
                <tr key={e.id}>
                  <td>
                    <Time t={e.eventTime} />
                  </td>
                  <td>{e.actorName || "anonymous"}</td>
                  <td>{e.action}</td>
                  <td>{e.resourceName || e.resourceId}</td>
                  <td>{AuditOutcome[e.outcome]?.toLowerCase()}</td>
                  <td>{e.clientAddress}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager nextToken={list.data.nextPageToken} total={list.data.totalSize} shown={list.data.auditEvents.length} />
        </>
      )}
    </section>
  );
}
