// Image names, `<registry>/<namespace>/<repository...>`: the one parser (every edge calls it) and
// the one length rule (every store that creates or renames a part of a name checks it).
import { nameInvalid } from "./errors.js";
import { checkPathComponent, checkRegistryName, checkRepositoryName, MAX_IMAGE_NAME } from "./names.js";

export interface ImageName {
  registry: string;
  namespace: string;
  /** One or more `/`-separated components. */
  repository: string;
  /** The whole name as written. */
  full: string;
}

/** The characters of `<registry>/<namespace>/<repository>`, from its parts or their lengths. */
export function imageNameLength(registry: string | number, namespace: string | number, repository: string | number): number {
  const length = (part: string | number) => (typeof part === "number" ? part : part.length);
  return length(registry) + length(namespace) + length(repository) + 2;
}

/**
 * DomainError name-invalid when an image name of `length` characters breaks the limit; `subject`
 * starts the message: `the image name "a/b/c"`, `renaming the namespace to "x"`.
 */
export function checkImageNameLength(length: number, subject: string): void {
  if (length > MAX_IMAGE_NAME) throw nameInvalid(`${subject} would make an image name ${length} characters long; at most ${MAX_IMAGE_NAME} allowed`);
}

/**
 * `full` checked against the grammar and the length rule; DomainError name-invalid otherwise, its
 * message starting with `field` (a request field, or "repository name" on /v2/).
 */
export function parseImageName(full: string, field = "repository name"): ImageName {
  const parts = full.split("/");
  if (parts.length < 3) {
    throw nameInvalid(`${field}: expected <registry>/<namespace>/<repository> (e.g. local/team/app), got ${JSON.stringify(full.slice(0, 255))}`);
  }
  const [registry, namespace, ...rest] = parts as [string, string, ...string[]];
  const repository = rest.join("/");
  const problem =
    (checkRegistryName(registry) && `registry ${checkRegistryName(registry)}`) ||
    (checkPathComponent(namespace) && `namespace ${checkPathComponent(namespace)}`) ||
    (checkRepositoryName(repository) && `repository ${checkRepositoryName(repository)}`) ||
    (full.length > MAX_IMAGE_NAME && `the name is ${full.length} characters long; at most ${MAX_IMAGE_NAME} allowed`);
  if (problem) throw nameInvalid(`${field}: ${problem}`);
  return { registry, namespace, repository, full };
}
