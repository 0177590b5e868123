/** The {@code gridlake-redis} serving-copy sink. */
package io.gridlake.flink.redis;
