/**
 * A whole list read page by page, after client-go's `tools/pager`: pages of
 * {@linkcode LIST_PAGE_SIZE} where they help (`resourceVersion` "0" or "", which the watch cache
 * ignores or etcd pages), one request for a specific resourceVersion so that the watch cache
 * answers it (client-go `list`: `pager.PageSize = 0`), and a list that expires between pages
 * (410 on a continue token) read again whole (`FullListIfExpired`).
 *
 * @module
 */
import { apiError, isExpired } from "./api_error.ts";
import type { KubeItem } from "./store.ts";

/** Page size of a paginated list; the watch cache answers `resourceVersion=0` whole anyway. */
export const LIST_PAGE_SIZE = 500;

/** A complete list and the resourceVersion it was taken at. */
export interface ListResult {
  items: KubeItem[];
  resourceVersion: string;
}

/** Options for {@linkcode listAll}. */
export interface ListAllOptions {
  /** Called when a list expired between pages and is read again whole. */
  onRestart?: () => void;
}

/** Reads every page of the list at `resourceVersion`; `get` sends one request with the given
 * query parameters. Throws the API server's error otherwise. */
export async function listAll(
  get: (params: Record<string, string>) => Promise<Response>,
  resourceVersion: string,
  options: ListAllOptions = {},
): Promise<ListResult> {
  let paged = resourceVersion === "0" || resourceVersion === "";
  for (;;) {
    const items: KubeItem[] = [];
    let cont: string | undefined;
    let listRV = "";
    try {
      do {
        // A continue token carries the resourceVersion of the first page.
        const params: Record<string, string> = cont ? { continue: cont } : { resourceVersion };
        if (paged) params.limit = String(LIST_PAGE_SIZE);
        const resp = await get(params);
        if (!resp.ok) throw await apiError(resp);
        const body = await resp.json() as {
          items?: KubeItem[];
          metadata?: { resourceVersion?: string; continue?: string };
        };
        items.push(...(body.items ?? []));
        cont = body.metadata?.continue || undefined;
        listRV = body.metadata?.resourceVersion ?? listRV;
      } while (cont);
      return { items, resourceVersion: listRV };
    } catch (e) {
      if (!(cont && isExpired(e)) || !paged) throw e;
      options.onRestart?.();
      paged = false;
    }
  }
}
