/*
 * The page's only way to the API: the same REST endpoints the CLI uses, with the bearer token of
 * this tab. The token lives in sessionStorage only, never in the address or a cookie.
 */

const TOKEN_KEY = 'opsledger.auditToken';

export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export const storedToken = () => sessionStorage.getItem(TOKEN_KEY) || '';
export const keepToken = (token) => sessionStorage.setItem(TOKEN_KEY, token);
export const forgetToken = () => sessionStorage.removeItem(TOKEN_KEY);

function headers(extra) {
  const all = { accept: 'application/json', ...extra };
  const token = storedToken();
  if (token) all.authorization = `Bearer ${token}`;
  return all;
}

async function answer(response) {
  const type = response.headers.get('content-type') || '';
  const body = type.includes('json') ? await response.json() : { title: await response.text() };
  if (!response.ok) throw new ApiProblem(response.status, body);
  return body;
}

const withQuery = (path, params) => (params && [...params].length > 0 ? `${path}?${params}` : path);

export async function apiGet(path, params) {
  return answer(await fetch(withQuery(path, params), { headers: headers(), cache: 'no-store' }));
}

export async function apiPost(path, body) {
  return answer(
    await fetch(path, { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body || {}), cache: 'no-store' }),
  );
}

/**
 * A download that needs the token: fetched with it, then handed to the browser as a file. The
 * body streams from the API; the browser keeps it as a Blob until it is saved.
 */
export async function apiDownload(path, params, fileName) {
  const response = await fetch(withQuery(path, params), { headers: headers({ accept: '*/*' }), cache: 'no-store' });
  if (!response.ok) await answer(response);
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement('a'), { href: url, download: fileName });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
