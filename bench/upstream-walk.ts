// The floor under a sync: the upstream requests a sync makes (catalog pages, each repository's
// tag list, a manifest HEAD per tag), sent by a bare Node client with the sync's concurrency and
// nothing else done with the answers. Sync time ÷ walk time is what the sync adds.
import { ACCEPT_ANY_MANIFEST } from "../test/support/oci-images.js";

export interface Walk {
  repositories: number;
  tags: number;
  requests: number;
  seconds: number;
}

function nextLink(res: Response, base: string): string | undefined {
  const link = res.headers.get("link");
  const m = link ? /<([^>]+)>;\s*rel="?next"?/.exec(link) : null;
  return m ? new URL(m[1]!, base).toString() : undefined;
}

async function json<T>(url: string): Promise<{ body: T; next?: string }> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`upstream walk: GET ${url}: HTTP ${res.status}`);
  return { body: (await res.json()) as T, next: nextLink(res, url) };
}

export async function walkUpstream(url: string, o: { repositoryConcurrency: number; tagConcurrency: number; pageSize: number }): Promise<Walk> {
  const t0 = performance.now();
  let requests = 0;
  let tags = 0;
  const repositories: string[] = [];
  for (let page: string | undefined = `${url}/v2/_catalog?n=${o.pageSize}`; page;) {
    const answer: { body: { repositories: string[] }; next?: string } = await json(page);
    requests++;
    repositories.push(...answer.body.repositories);
    page = answer.next;
  }
  let nextRepo = 0;
  const repoWorker = async () => {
    while (nextRepo < repositories.length) {
      const repo = repositories[nextRepo++]!;
      const names: string[] = [];
      for (let page: string | undefined = `${url}/v2/${repo}/tags/list`; page;) {
        const answer: { body: { tags: string[] | null }; next?: string } = await json(page);
        requests++;
        names.push(...(answer.body.tags ?? []));
        page = answer.next;
      }
      let nextTag = 0;
      const tagWorker = async () => {
        while (nextTag < names.length) {
          const tag = names[nextTag++]!;
          const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { method: "HEAD", headers: { accept: ACCEPT_ANY_MANIFEST } });
          requests++;
          if (res.status !== 200 || !res.headers.get("docker-content-digest")) throw new Error(`upstream walk: HEAD ${repo}:${tag}: HTTP ${res.status}`);
          tags++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(o.tagConcurrency, names.length) }, tagWorker));
    }
  };
  await Promise.all(Array.from({ length: o.repositoryConcurrency }, repoWorker));
  return { repositories: repositories.length, tags, requests, seconds: (performance.now() - t0) / 1000 };
}
