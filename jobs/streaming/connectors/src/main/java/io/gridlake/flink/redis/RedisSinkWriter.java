package io.gridlake.flink.redis;

import io.gridlake.flink.common.ChangeBuffer;
import io.gridlake.flink.common.RowStamper;

import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.table.data.RowData;
import org.apache.flink.types.RowKind;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.Transaction;
import redis.clients.jedis.exceptions.JedisConnectionException;

import java.io.IOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Buffers the latest change per key and writes the buffer in one MULTI/EXEC transaction on
 * {@link #flush} (before every checkpoint barrier and at the end of input) or when the buffer is
 * full, then publishes the number of changed keys on {@code <prefix>events}.
 *
 * <p>An upsert sets the row's non-null columns with HSET, removes its null columns with HDEL and
 * adds the key suffix to {@code <prefix>index}; a delete removes the hash and the index member.
 * Writes are idempotent, so a replay after a failure converges to the same state. Connection
 * failures are retried with exponential backoff; when the retries are used up the flush throws and
 * the job fails (and restarts from its last checkpoint), the buffered rows are never dropped.
 */
public final class RedisSinkWriter implements SinkWriter<RowData> {

  private static final Logger LOG = LoggerFactory.getLogger(RedisSinkWriter.class);
  private static final long MAX_BACKOFF_MS = 30_000L;

  /** One buffered upsert. */
  static final class Upsert {
    final Map<String, String> fields;
    final List<String> nullFields;
    final double score;

    Upsert(Map<String, String> fields, List<String> nullFields, double score) {
      this.fields = fields;
      this.nullFields = nullFields;
      this.score = score;
    }
  }

  private final RedisSinkSpec spec;
  private final RedisRowConverter converter;
  private final ChangeBuffer<String, Upsert> buffer = new ChangeBuffer<>(null);
  private final RowStamper stamper;
  private Jedis jedis;

  /**
   * Creates the writer; the connection is opened on the first flush.
   *
   * @param spec sink spec
   */
  public RedisSinkWriter(RedisSinkSpec spec) {
    this.spec = spec;
    this.converter = new RedisRowConverter(spec.rowType(), spec.keyFields(), spec.scoreField());
    this.stamper = new RowStamper(spec.rowType(), spec.stampField());
  }

  @Override
  public void write(RowData row, Context context) throws IOException, InterruptedException {
    RowKind kind = row.getRowKind();
    if (kind == RowKind.UPDATE_BEFORE) {
      return;
    }
    String suffix = converter.keySuffix(row);
    if (kind == RowKind.DELETE) {
      buffer.delete(suffix);
    } else {
      row = stamper.stamp(row);
      String[] names = converter.names();
      Map<String, String> fields = new LinkedHashMap<>();
      List<String> nulls = new ArrayList<>();
      for (int i = 0; i < names.length; i++) {
        String v = converter.value(row, i);
        if (v == null) {
          nulls.add(names[i]);
        } else {
          fields.put(names[i], v);
        }
      }
      buffer.upsert(suffix, new Upsert(fields, nulls, converter.score(row)));
    }
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
        int n = writeOnce();
        LOG.info(
            "Redis flush prefix={} keys={} ms={}",
            spec.keyPrefix(),
            n,
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

  private int writeOnce() throws IOException {
    Jedis j = connection();
    String prefix = spec.keyPrefix();
    String index = spec.indexKey();
    Transaction tx = j.multi();
    int n = 0;
    for (ChangeBuffer.Change<String, Upsert> c : buffer.changes()) {
      String key = prefix + c.key();
      if (c.isDelete()) {
        tx.del(key);
        tx.zrem(index, c.key());
      } else {
        Upsert u = c.value();
        tx.hset(key, u.fields);
        if (!u.nullFields.isEmpty()) {
          tx.hdel(key, u.nullFields.toArray(new String[0]));
        }
        tx.zadd(index, u.score, c.key());
      }
      n++;
    }
    List<Object> results = tx.exec();
    if (results == null) {
      throw new IOException("Redis transaction for prefix " + prefix + " was aborted");
    }
    for (Object r : results) {
      if (r instanceof Exception) {
        throw new IOException(
            "Redis command failed for prefix " + prefix + ": " + r, (Exception) r);
      }
    }
    j.publish(spec.eventsChannel(), Integer.toString(n));
    return n;
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
