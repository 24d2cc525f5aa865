// Search every tag the caller may read by a substring of its image reference (`team/app:1.`).
import { useQuery } from "@connectrpc/connect-query";
import { skipToken } from "@tanstack/react-query";
import { TagService } from "../../../gen/artifact/v1/tag_pb.js";
import { Empty, ErrorView, formatBytes, Loading, Pager, SearchBox, shortDigest, Time } from "../components.js";
import { Link, paths, useLocation } from "../router.js";

export function Search() {
  const { query } = useLocation();
  const q = query.get("q") ?? "";
  const found = useQuery(
    TagService.method.searchTags,
    q ? { query: q, pageSize: 50, pageToken: query.get("page") ?? "", orderBy: "push_time desc" } : skipToken,
  );
  return (
    <section>
      <h1>Search images</h1>
      <SearchBox label="Image reference contains" placeholder="team/app:1." />
      {!q ? (
        <Empty>
          <p>Type part of an image reference: a registry, namespace, repository or tag name.</p>
        </Empty>
      ) : found.isPending ? (
        <Loading what="results" />
      ) : found.isError ? (
        <ErrorView error={found.error} retry={() => void found.refetch()} />
      ) : found.data.tags.length === 0 ? (
        <Empty>
          <p>No image matches “{q}”.</p>
        </Empty>
      ) : (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Image</th>
                <th scope="col">Digest</th>
                <th scope="col">Size</th>
                <th scope="col">Pushed</th>
              </tr>
            </thead>
            <tbody>
              {found.data.tags.map((t) => {
                const repository = t.fullName.slice(0, t.fullName.lastIndexOf(":"));
                return (
                  <tr key={t.id}>
                    <td>
                      <Link to={paths.image(repository, t.name)}>{t.fullName}</Link>
                    </td>
                    <td>
                      <code title={t.digest}>{shortDigest(t.digest)}</code>
                    </td>
                    <td>{formatBytes(t.sizeBytes)}</td>
                    <td>
                      <Time t={t.pushTime} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <Pager nextToken={found.data.nextPageToken} total={found.data.totalSize} shown={found.data.tags.length} />
        </>
      )}
    </section>
  );
}
