package io.gridlake.flink.redis;

import io.gridlake.flink.common.RowStamper;

import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.table.data.RowData;
import org.apache.flink.types.RowKind;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.Transaction;
import redis.clients.jedis.exceptions.JedisConnectionException;
import redis.clients.jedis.exceptions.JedisDataException;

import java.io.IOException;
import java.net.URI;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a changelog of rows into the serving copy with the protocol of {@code
 * infra/serving_store.py} (see {@link ServingProtocol}): every upsert and delete is one run of the
 * shared Lua scripts, guarded by the table's ordering field when the sink has one ({@code
 * ordering.field}), so the newer version of a key wins against every other writer of the copy
 * (a backfill's refresh, an ML run) as in the lake.
 *
 * <p>Buffers, per key, one change with the effect of all the key's changes since the last flush
 * ({@link #merge}: the newer by ordering value, else the later) and writes the buffer on {@link
 * #flush} (before every checkpoint barrier and at the end of input), when it is full, or when two
 * changes of a key cannot be merged: one {@code MULTI}/{@code EXEC} holding one {@code EVALSHA} per key and, last, {@code
 * PUBLISH <prefix>events <keys>}, sent in one round trip. A server that does not know a script
 * yet ({@code NOSCRIPT}) gets it with {@code SCRIPT LOAD} and the transaction again: the scripts
 * are idempotent, so a change applied by the first attempt is applied identically by the second.
 *
 * <p>A delete's ordering value is the sink's write time when the ordering field is the stamped
 * column ({@code stamp.field}: a hash written before is removed, one a later writer computed is
 * kept), else the deleted row's own value. Connection failures are retried with exponential
 * backoff; when the retries are used up the flush throws and the job fails (and restarts from its
 * last checkpoint), the buffered rows are never dropped.
 */
public final class RedisSinkWriter implements SinkWriter<RowData> {

  private static final Logger LOG = LoggerFactory.getLogger(RedisSinkWriter.class);
  private static final long MAX_BACKOFF_MS = 30_000L;

  /** One buffered change of a key: the script to run and its {@code ARGV}. */
  static final class Call {
    final boolean delete;
    final List<String> args;
    /** Ordering value as a number (NaN: none, the change always applies). */
    final double order;

    Call(boolean delete, List<String> args, double order) {
      this.delete = delete;
      this.args = args;
      this.order = order;
    }
  }

  /**
   * One change with the effect of {@code buffered} then {@code incoming} on every state of the
   * key's hash, as the scripts apply them, or {@code null} when there is none: the buffer is
   * written first. A change is refused when the stored ordering value is greater, and a delete
   * leaves nothing that orders a later change.
   *
   * @param buffered the change buffered so far
   * @param incoming the change that arrived after it
   * @return the change to buffer instead, or null
   */
  static Call merge(Call buffered, Call incoming) {
    if (Double.isNaN(incoming.order)) {
      return incoming; // applies whatever precedes it
    }
    if (Double.isNaN(buffered.order)) {
      return null; // incoming must meet the buffered change in Redis, not the stored hash
    }
    if (buffered.order > incoming.order) {
      // refused after the buffered change, except an older insert after a delete (which may
      // have removed the hash): both must run. Rare: the stream stamps every change.
      return buffered.delete && !incoming.delete ? null : buffered;
    }
    return incoming;
  }

  private final RedisSinkSpec spec;
  private final ServingProtocol protocol;
  /** The change of each key since the last flush, in first-arrival order of the keys. */
  private final Map<String, Call> buffer = new LinkedHashMap<>();
  private final RowStamper stamper;
  private final boolean stampOrders;
  private Jedis jedis;

  /**
   * Creates the writer; the connection is opened on the first flush.
   *
   * @param spec sink spec
   */
  public RedisSinkWriter(RedisSinkSpec spec) {
    this.spec = spec;
    this.protocol =
        new ServingProtocol(
            spec.rowType(), spec.keyFields(), spec.scoreField(), spec.orderingField());
    this.stamper = new RowStamper(spec.rowType(), spec.stampField());
    this.stampOrders =
        spec.orderingField() != null && spec.orderingField().equals(spec.stampField());
  }

  @Override
  public void write(RowData row, Context context) throws IOException, InterruptedException {
    RowKind kind = row.getRowKind();
    if (kind == RowKind.UPDATE_BEFORE) {
      return;
    }
    String member = protocol.member(row);
    Call call;
    if (kind == RowKind.DELETE) {
      // a retraction carries the value the query computed, not a stamp: stamp the delete
      String version = stampOrders ? Long.toString(stamper.next()) : protocol.orderingValue(row);
      call =
          new Call(true, protocol.deleteArgs(member, version), ServingProtocol.orderOf(version));
    } else {
      RowData stamped = stamper.stamp(row);
      call =
          new Call(
              false,
              protocol.upsertArgs(stamped),
              ServingProtocol.orderOf(protocol.orderingValue(stamped)));
    }
    Call buffered = buffer.get(member);
    Call merged = buffered == null ? call : merge(buffered, call);
    if (merged == null) {
      writeBuffer();
      merged = call;
    }
    buffer.put(member, merged);
    if (buffer.size() >= spec.maxBufferedRows()) {
      writeBuffer();
    }
  }

  @Override
  public void flush(boolean endOfInput) throws IOException, InterruptedException {
    writeBuffer();
  }

  private void writeBuffer() throws IOException, InterruptedException {
    if (buffer.isEmpty()) {
      return;
    }
    long backoff = Math.max(1L, spec.retryBackoffMs());
    for (int attempt = 0; ; attempt++) {
      try {
        long start = System.currentTimeMillis();
        int written = writeOnce();
        LOG.info(
            "Redis flush prefix={} keys={} written={} ms={}",
            spec.keyPrefix(),
            buffer.size(),
            written,
            System.currentTimeMillis() - start);
        buffer.clear();
        return;
      } catch (JedisConnectionException e) {
        closeConnection();
        if (attempt >= spec.maxRetries()) {
          throw new IOException(
              "Redis at "
                  + redactedUrl()
                  + " unreachable after "
                  + (attempt + 1)
                  + " attempts; "
                  + buffer.size()
                  + " buffered keys were not written (the job restarts from its last checkpoint)",
              e);
        }
        LOG.warn(
            "Redis write to {} failed (attempt {} of {}), retrying in {} ms: {}",
            redactedUrl(),
            attempt + 1,
            spec.maxRetries() + 1,
            backoff,
            e.toString());
        Thread.sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  /** Writes the buffer; returns the changes applied (the others lost to a newer hash). */
  private int writeOnce() throws IOException {
    Jedis j = connection();
    List<Object> results = transaction(j);
    if (results.stream().anyMatch(RedisSinkWriter::isNoScript)) {
      LOG.info("Redis at {} lacks the serving scripts; loading them", redactedUrl());
      j.scriptLoad(ServingProtocol.UPSERT_SCRIPT);
      j.scriptLoad(ServingProtocol.DELETE_SCRIPT);
      results = transaction(j);
    }
    int written = 0;
    for (Object r : results) {
      if (r instanceof Exception) {
        throw new IOException(
            "Redis command failed for prefix " + spec.keyPrefix() + ": " + r, (Exception) r);
      }
    }
    // every result but the last (PUBLISH) is a script's 1 (applied) or 0 (refused)
    for (Object r : results.subList(0, results.size() - 1)) {
      written += ((Number) r).intValue();
    }
    return written;
  }

  private List<Object> transaction(Jedis j) throws IOException {
    String prefix = spec.keyPrefix();
    Transaction tx = j.multi();
    for (Map.Entry<String, Call> e : buffer.entrySet()) {
      Call call = e.getValue();
      tx.evalsha(
          call.delete ? ServingProtocol.DELETE_SHA : ServingProtocol.UPSERT_SHA,
          ServingProtocol.keys(prefix, e.getKey()),
          call.args);
    }
    tx.publish(spec.eventsChannel(), Integer.toString(buffer.size()));
    List<Object> results = tx.exec();
    if (results == null) {
      throw new IOException("Redis transaction for prefix " + prefix + " was aborted");
    }
    return results;
  }

  private static boolean isNoScript(Object result) {
    return result instanceof JedisDataException
        && String.valueOf(((JedisDataException) result).getMessage()).startsWith("NOSCRIPT");
  }

  private Jedis connection() {
    if (jedis == null) {
      jedis = new Jedis(URI.create(spec.url()), spec.timeoutMs());
    }
    return jedis;
  }

  private void closeConnection() {
    if (jedis != null) {
      try {
        jedis.close();
      } catch (RuntimeException e) {
        LOG.debug("Closing a broken Redis connection failed", e);
      }
      jedis = null;
    }
  }

  private String redactedUrl() {
    URI u = URI.create(spec.url());
    return u.getScheme() + "://" + u.getHost() + ":" + u.getPort() + u.getPath();
  }

  @Override
  public void close() {
    closeConnection();
  }
}
