// The console's one way to the server: the HTTP API, with the bearer token the user typed (kept in this
// browser's localStorage, never anywhere else).

const TOKEN_KEY = "daft-token";

/** An API failure: the server's `{error: {code, message, details}}`, with the HTTP status. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message);
    this.status = status;
    this.code = error.code;
    this.details = error.details ?? {};
  }
}

/** The token saved in this browser, or "". */
export const savedToken = () => localStorage.getItem(TOKEN_KEY) ?? "";

/** Saves (or, empty, forgets) the token. */
export function saveToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/**
 * Calls the API: a plain object body goes as JSON, a FormData as multipart. Resolves to the parsed JSON
 * (null for 204); rejects with an {@link ApiError}.
 *
 * @example
 * const { datasets } = await api("GET", "/v1/datasets");
 */
export async function api(method, path, body) {
  const headers = {};
  const token = savedToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, { code: "network_error", message: `the server did not answer (${err.message})` });
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    throw new ApiError(res.status, data?.error ?? { code: `http_${res.status}`, message: res.statusText });
  }
  return data;
}

/** A path segment, encoded (labels may hold spaces and slashes). */
export const seg = (s) => encodeURIComponent(s);
