/** The {@code gridlake-hudi} upsert sink on Hudi's Java write client. */
package io.gridlake.flink.hudi;
