package io.gridlake.flink.redis;

import org.apache.flink.table.types.logical.RowType;

import java.io.Serializable;
import java.util.List;

/** Validated configuration of one Redis sink, shipped to the tasks. */
public final class RedisSinkSpec implements Serializable {

  private static final long serialVersionUID = 1L;

  private final String url;
  private final String keyPrefix;
  private final RowType rowType;
  private final List<String> keyFields;
  private final String scoreField;
  private final int maxBufferedRows;
  private final int maxRetries;
  private final long retryBackoffMs;
  private final int timeoutMs;
  private final String stampField;
  private final String orderingField;

  /**
   * Creates the spec.
   *
   * @param url redis:// URL
   * @param keyPrefix key prefix
   * @param rowType physical row type
   * @param keyFields primary key columns, in DDL order
   * @param scoreField index score column or {@code null}
   * @param maxBufferedRows buffered keys forcing a write
   * @param maxRetries retries of a failed flush
   * @param retryBackoffMs first retry delay
   * @param timeoutMs connect/socket timeout
   * @param stampField column stamped with the write time, or {@code null}
   * @param orderingField column ordering two versions of a key, or {@code null}
   */
  public RedisSinkSpec(
      String url,
      String keyPrefix,
      RowType rowType,
      List<String> keyFields,
      String scoreField,
      int maxBufferedRows,
      int maxRetries,
      long retryBackoffMs,
      int timeoutMs,
      String stampField,
      String orderingField) {
    this.url = url;
    this.keyPrefix = keyPrefix;
    this.rowType = rowType;
    this.keyFields = List.copyOf(keyFields);
    this.scoreField = scoreField;
    this.maxBufferedRows = maxBufferedRows;
    this.maxRetries = maxRetries;
    this.retryBackoffMs = retryBackoffMs;
    this.timeoutMs = timeoutMs;
    this.stampField = stampField;
    this.orderingField = orderingField;
  }

  /** Column stamped with the write time (see {@code RowStamper}), or {@code null}. */
  public String stampField() {
    return stampField;
  }

  /** Column ordering two versions of a key (see {@code ServingProtocol}), or {@code null}. */
  public String orderingField() {
    return orderingField;
  }

  public String url() {
    return url;
  }

  public String keyPrefix() {
    return keyPrefix;
  }

  public RowType rowType() {
    return rowType;
  }

  public List<String> keyFields() {
    return keyFields;
  }

  /** Score column of the index, or {@code null}. */
  public String scoreField() {
    return scoreField;
  }

  public int maxBufferedRows() {
    return maxBufferedRows;
  }

  public int maxRetries() {
    return maxRetries;
  }

  public long retryBackoffMs() {
    return retryBackoffMs;
  }

  public int timeoutMs() {
    return timeoutMs;
  }

  /** Sorted set holding one member per row: the key suffix {@code <pk1>|<pk2>...}. */
  public String indexKey() {
    return keyPrefix + "index";
  }

  /** Channel receiving the number of changed keys after each flush. */
  public String eventsChannel() {
    return keyPrefix + "events";
  }
}
