package hookstream.peer;

import java.nio.file.Files;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.state.Stores;

/**
 * hookstream's processor topology in Kafka Streams, the way a Kafka Streams team would write it:
 * raw records → parse and normalize into CloudEvents keyed by subject → repartition by subject →
 * deduplicate by event id in a RocksDB window store (changelogged) → firehose, type and tag topics.
 *
 * <p>Arguments: bootstrap, application id, guarantee (at_least_once | exactly_once_v2), output namespace,
 * dedup window in seconds, partitions of
 * the topics it creates, raw topics... It prints {@code processed N} (records through the dedup step)
 * as it goes, so the benchmark can sample its CPU time over the measured span, and runs until stopped.
 */
public final class Peer {
    static final AtomicLong PROCESSED = new AtomicLong();

    private Peer() {}

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String applicationId = args[1];
        String guarantee = args[2];
        String namespace = args[3];
        Duration window = Duration.ofSeconds(Long.parseLong(args[4]));
        int partitions = Integer.parseInt(args[5]);
        List<String> rawTopics = Arrays.asList(args).subList(6, args.length);

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("kstreams-peer").toString());
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        Topics topics = new Topics(namespace, bootstrap, partitions);
        try (KafkaStreams streams = new KafkaStreams(topology(rawTopics, window, topics), props)) {
            CountDownLatch stopped = new CountDownLatch(1);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                streams.close(Duration.ofSeconds(20));
                stopped.countDown();
            }));
            streams.start();
            report(stopped);
        } finally {
            topics.close();
        }
    }

    static Topology topology(List<String> rawTopics, Duration window, Topics topics) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.addStateStore(Stores.windowStoreBuilder(
                Stores.persistentWindowStore(Dedup.STORE, window, window, false),
                Serdes.String(), Serdes.Long()));  // changelogged by default
        builder.stream(rawTopics, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
                .process(() -> new Normalize(topics))
                .repartition(Repartitioned.with(Serdes.String(), Serdes.ByteArray()).withName("keyed"))
                .process(() -> new Dedup(window, topics), Dedup.STORE)
                .to(Dedup::outTopic, Produced.with(Serdes.String(), Serdes.ByteArray()));
        return builder.build();
    }

    /** One line whenever the count moved, every 20 ms, until the shutdown hook has closed the app. */
    private static void report(CountDownLatch stopped) throws InterruptedException {
        long last = -1;
        while (!stopped.await(20, java.util.concurrent.TimeUnit.MILLISECONDS)) {
            long now = PROCESSED.get();
            if (now != last) {
                System.out.println("processed " + now);
                System.out.flush();
                last = now;
            }
        }
    }
}
