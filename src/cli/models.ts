// `earshot models`: what the server can serve (GET /v1/models, with earshot's `state`), and loading or
// unloading one through the admin API (POST and DELETE /api/ps/NAME).
import type { Clients } from './connection.ts';

interface ListedModel {
  id: string;
  owned_by: string;
  /** earshot's: loaded, loading, available (loads on first use) or downloadable. */
  state?: string;
}

interface PoolStatus {
  model: string;
  state: string;
  pinned: boolean;
  workers: number;
  size: number;
}

/** A table of the models, one a line, columns aligned. */
export async function listModels({ api }: Clients): Promise<string> {
  const models: ListedModel[] = [];
  for await (const model of api.models.list()) models.push(model);
  const rows = [
    ['MODEL', 'STATE', 'OWNED BY'],
    ...models.map((model) => [model.id, model.state ?? '', model.owned_by]),
  ];
  const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]?.length ?? 0)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Model names hold "/" (OWNER/NAME), which the admin route takes as it is. */
const adminPath = (name: string) => `/api/ps/${name.split('/').map(encodeURIComponent).join('/')}`;

export async function loadModel({ root }: Clients, name: string): Promise<string> {
  const { data, response } = await root.post<PoolStatus>(adminPath(name)).withResponse();
  const workers = `${data.workers} of ${data.size} workers`;
  return response.status === 201
    ? `loaded ${data.model} (${workers})`
    : `${data.model} was loaded already (${workers})`;
}

export async function unloadModel({ root }: Clients, name: string): Promise<string> {
  const data = await root.delete<{ model: string }>(adminPath(name));
  return `unloaded ${data.model}`;
}
