package io.gridlake.flink.common;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Buffers the latest change per key between two flushes.
 *
 * <p>A delete always replaces what is buffered for its key; an upsert replaces a buffered delete;
 * an upsert replaces a buffered upsert unless the {@link Precedence} says the buffered one wins
 * (used for the Hudi sink's ordering field; ties go to the later arrival).
 *
 * @param <K> key type
 * @param <V> upsert payload type
 */
public final class ChangeBuffer<K, V> {

  /** Decides whether a buffered upsert beats a newer one for the same key. */
  @FunctionalInterface
  public interface Precedence<V> {
    /**
     * Whether {@code buffered} must be kept instead of {@code incoming}.
     *
     * @param buffered the upsert already buffered
     * @param incoming the upsert that arrived later
     * @return true to keep {@code buffered}
     */
    boolean keepBuffered(V buffered, V incoming);
  }

  /**
   * One buffered change.
   *
   * @param <K> key type
   * @param <V> payload type
   */
  public static final class Change<K, V> {
    private final K key;
    private final V value;

    private Change(K key, V value) {
      this.key = key;
      this.value = value;
    }

    public K key() {
      return key;
    }

    /** The upsert payload, or {@code null} for a delete. */
    public V value() {
      return value;
    }

    public boolean isDelete() {
      return value == null;
    }
  }

  private final Precedence<V> precedence;
  private final LinkedHashMap<K, Change<K, V>> changes = new LinkedHashMap<>();
  private long superseded;

  /**
   * Creates a buffer.
   *
   * @param precedence ordering rule between two upserts, or {@code null} for pure arrival order
   */
  public ChangeBuffer(Precedence<V> precedence) {
    this.precedence = precedence;
  }

  /** Buffers an insert or update. */
  public void upsert(K key, V value) {
    if (value == null) {
      throw new IllegalArgumentException("upsert payload must not be null");
    }
    Change<K, V> old = changes.get(key);
    if (old != null) {
      superseded++;
      if (!old.isDelete() && precedence != null && precedence.keepBuffered(old.value, value)) {
        return;
      }
    }
    changes.put(key, new Change<>(key, value));
  }

  /** Buffers a delete of the key. */
  public void delete(K key) {
    if (changes.containsKey(key)) {
      superseded++;
    }
    changes.put(key, new Change<>(key, null));
  }

  /** Number of distinct keys buffered. */
  public int size() {
    return changes.size();
  }

  public boolean isEmpty() {
    return changes.isEmpty();
  }

  /** Changes dropped because a later change of the same key replaced them (or lost to it). */
  public long superseded() {
    return superseded;
  }

  /** The buffered changes, in first-arrival order of their keys. */
  public Collection<Change<K, V>> changes() {
    return changes.values();
  }

  /** Buffered upsert payloads. */
  public List<V> upserts() {
    List<V> out = new ArrayList<>();
    for (Change<K, V> c : changes.values()) {
      if (!c.isDelete()) {
        out.add(c.value);
      }
    }
    return out;
  }

  /** Buffered delete keys. */
  public List<K> deletes() {
    List<K> out = new ArrayList<>();
    for (Map.Entry<K, Change<K, V>> e : changes.entrySet()) {
      if (e.getValue().isDelete()) {
        out.add(e.getKey());
      }
    }
    return out;
  }

  /** Empties the buffer. */
  public void clear() {
    changes.clear();
  }
}
