/**
 * GridLake's Flink table connectors.
 *
 * <ul>
 *   <li>{@code 'connector' = 'gridlake-hudi'}: upsert sink into a Hudi table through Hudi's Java
 *       write client, one Hudi commit per Flink checkpoint ({@link io.gridlake.flink.hudi}).
 *   <li>{@code 'connector' = 'gridlake-redis'}: serving copy of rows as Redis hashes plus a sorted
 *       set index ({@link io.gridlake.flink.redis}).
 * </ul>
 *
 * <p>See {@code docs/connectors.md}.
 */
package io.gridlake.flink;
