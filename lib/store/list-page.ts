/**
 * One page of a listing that has no sorted index (objects stored as files:
 * config, keys, snapshots, plans): up to `limit` ids greater than `after`,
 * ascending. Such kinds hold few objects, so sorting the whole listing is fine.
 */
export async function pageOfListing(ids: AsyncIterable<string>, after: string | undefined, limit: number): Promise<string[]> {
  const out: string[] = [];
  for await (const id of ids) if (after === undefined || id > after) out.push(id);
  return out.sort().slice(0, limit);
}
