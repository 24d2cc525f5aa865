// A webhook's endpoint URL: one rule for the API, which stores it, and the deliverer, which POSTs
// to it. http or https, no credentials in it (the signature authenticates the sender; a receiver
// that wants a token may put it in the path or query, which is never logged).
import { invalidArgument } from "./errors.js";
import { hasControlCharacter } from "./text.js";

const MAX_WEBHOOK_URL = 2048;

/** The URL as it is stored (WHATWG-normalised); invalid-argument naming `field` and what is wrong otherwise. */
export function parseWebhookUrl(value: string, field = "url"): URL {
  const fail = (why: string) => invalidArgument(`${field}: ${why}`);
  if (value === "") throw fail("is required (e.g. https://hooks.example.com/artifact)");
  if (value.length > MAX_WEBHOOK_URL) throw fail(`must be at most ${MAX_WEBHOOK_URL} characters`);
  if (hasControlCharacter(value)) throw fail("must not contain control characters");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw fail(`${JSON.stringify(value.slice(0, 200))} is not a URL (e.g. https://hooks.example.com/artifact)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw fail(`must use http or https: start it with http:// or https:// (not ${url.protocol.replace(/:$/, "")})`);
  }
  if (url.username || url.password) throw fail("must not contain a user or password: receivers check the x-artifact-signature header instead");
  if (url.hash) throw fail("must not have a fragment");
  return url;
}
