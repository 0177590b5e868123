package io.gridlake.flink.redis;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;

import java.time.Duration;

/** Options of the {@code 'gridlake-redis'} connector. */
public final class RedisOptions {

  private RedisOptions() {}

  public static final ConfigOption<String> URL =
      ConfigOptions.key("url")
          .stringType()
          .noDefaultValue()
          .withDescription("redis://[:password@]host:port/db");

  public static final ConfigOption<String> KEY_PREFIX =
      ConfigOptions.key("key.prefix")
          .stringType()
          .noDefaultValue()
          .withDescription(
              "Prefix of every key, e.g. gridlake:ads:meter_energy_15min: ; rows are hashes at"
                  + " <prefix><pk1>|<pk2>..., the index is <prefix>index, events go to"
                  + " <prefix>events.");

  public static final ConfigOption<String> INDEX_SCORE_FIELD =
      ConfigOptions.key("index.score.field")
          .stringType()
          .noDefaultValue()
          .withDescription(
              "Numeric or TIMESTAMP column used as the score in <prefix>index (epoch millis for"
                  + " timestamps); score 0 when unset or null.");

  public static final ConfigOption<String> ORDERING_FIELD =
      ConfigOptions.key("ordering.field")
          .stringType()
          .noDefaultValue()
          .withDescription(
              "Optional numeric or TIMESTAMP column ordering two versions of a key: a change"
                  + " whose value is lower than the stored hash's is refused (the protocol of"
                  + " infra/serving_store.py); unset: changes apply in arrival order.");

  public static final ConfigOption<Integer> WRITE_BATCH_MAX_ROWS =
      ConfigOptions.key("write.batch.max.rows")
          .intType()
          .defaultValue(10_000)
          .withDescription("Distinct keys buffered before an extra write between checkpoints.");

  public static final ConfigOption<Integer> MAX_RETRIES =
      ConfigOptions.key("max.retries")
          .intType()
          .defaultValue(5)
          .withDescription("Retries of a failed flush (connection errors) before the job fails.");

  public static final ConfigOption<Duration> RETRY_BACKOFF =
      ConfigOptions.key("retry.backoff")
          .durationType()
          .defaultValue(Duration.ofMillis(500))
          .withDescription("First retry delay; doubled on every further retry (max 30 s).");

  public static final ConfigOption<Duration> TIMEOUT =
      ConfigOptions.key("timeout")
          .durationType()
          .defaultValue(Duration.ofSeconds(5))
          .withDescription("Connect and socket timeout.");
}
