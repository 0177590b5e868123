/** Load something for a page: its value, a readable error in place, a loading flag. */
import { ref, shallowRef, type Ref, type ShallowRef } from 'vue';
import { describe } from './errors';

export interface Loaded<T> {
  data: ShallowRef<T | null>;
  error: Ref<string | null>;
  loading: Ref<boolean>;
  run: () => Promise<void>;
}

export function useLoad<T>(fn: () => Promise<T>): Loaded<T> {
  const data = shallowRef<T | null>(null);
  const error = ref<string | null>(null);
  const loading = ref(false);
  async function run(): Promise<void> {
    loading.value = true;
    error.value = null;
    try {
      data.value = await fn();
    } catch (err) {
      error.value = describe(err);
    } finally {
      loading.value = false;
    }
  }
  return { data, error, loading, run };
}

/** The newest time the serving copy holds of a dataset (anchors the pages' windows). */
export async function latest(dataset: string): Promise<number | null> {
  const { get } = await import('../api/client');
  const f = await get('/api/v1/freshness');
  const s = f.serving.find((x) => x.dataset === dataset);
  return s?.last ? Date.parse(s.last) : null;
}
