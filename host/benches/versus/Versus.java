// The Kafka Streams side of `cargo bench -p sluice --bench versus`: each
// workload of the side-by-side benchmark written as a Kafka Streams 4.1.1
// application (and a raw consumer→producer loop), writing its results in
// Sluice's formats so the two outputs can be compared record for record.
//
// Run with Java's single-file launcher on the classpath `scripts/kafka.sh
// fetch` gathers (Kafka Streams, its clients, Jackson), nothing to build:
//
//   java -cp "$(scripts/kafka.sh classpath)" host/benches/versus/Versus.java \
//     WORKLOAD BROKERS INPUT OUTPUT APPLICATION_ID STATE_DIR CACHE_BYTES COMMIT_MS EOS THREADS
//
// Workloads: passthrough, filter, count, tumbling, hopping, sliding,
// session, raw. It runs until killed.
//
// Formats (Sluice's): counts are decimal text; a windowed result is keyed
// `key@start/end` with an exclusive end (Kafka Streams' sliding and session
// windows have an inclusive one, so one is added here); the filter passes
// orders whose `amount` is over 10,000, re-keyed by `customer_id`.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;

public class Versus {
    static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        if (args.length != 10) {
            System.err.println(
                    "usage: Versus WORKLOAD BROKERS INPUT OUTPUT APPLICATION_ID STATE_DIR CACHE_BYTES COMMIT_MS EOS THREADS");
            System.exit(2);
        }
        String workload = args[0], brokers = args[1], input = args[2], output = args[3];
        String app = args[4], stateDir = args[5];
        long cache = Long.parseLong(args[6]);
        long commitMs = Long.parseLong(args[7]);
        boolean eos = Boolean.parseBoolean(args[8]);
        int threads = Integer.parseInt(args[9]);
        if (workload.equals("raw")) {
            raw(brokers, input, output, app, commitMs);
            return;
        }

        StreamsBuilder b = new StreamsBuilder();
        KStream<String, String> in = b.stream(input, Consumed.with(Serdes.String(), Serdes.String()));
        Produced<String, String> out = Produced.with(Serdes.String(), Serdes.String());
        switch (workload) {
            case "passthrough" -> in.to(output, out);
            case "filter" -> in.flatMap((k, v) -> {
                        JsonNode order = parse(v);
                        if (order == null || !(order.path("amount").asDouble() > 10_000.0)) {
                            return List.of();
                        }
                        return List.of(KeyValue.pair(order.path("customer_id").asText(), v));
                    })
                    .to(output, out);
            case "count" -> in.groupByKey().count().toStream().mapValues(Versus::text).to(output, out);
            case "tumbling" -> windowed(in.groupByKey()
                            .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMinutes(1)))
                            .count(), 0)
                    .to(output, out);
            case "hopping" -> windowed(in.groupByKey()
                            .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMinutes(5))
                                    .advanceBy(Duration.ofMinutes(1)))
                            .count(), 0)
                    .to(output, out);
            case "sliding" -> windowed(in.groupByKey()
                            .windowedBy(SlidingWindows.ofTimeDifferenceWithNoGrace(Duration.ofSeconds(10)))
                            .count(), 1)
                    .to(output, out);
            case "session" -> windowed(in.groupByKey()
                            .windowedBy(SessionWindows.ofInactivityGapWithNoGrace(Duration.ofSeconds(1)))
                            .count(), 1)
                    .to(output, out);
            default -> {
                System.err.println("unknown workload: " + workload);
                System.exit(2);
            }
        }

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, cache);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, commitMs);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
                eos ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        KafkaStreams streams = new KafkaStreams(b.build(), p);
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(10));
            done.countDown();
        }));
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
                    .SHUTDOWN_CLIENT;
        });
        streams.start();
        done.await();
    }

    static JsonNode parse(String v) {
        try {
            return v == null ? null : JSON.readTree(v);
        } catch (Exception e) {
            return null;
        }
    }

    static String text(Long n) {
        return n == null ? null : Long.toString(n);
    }

    /// A windowed count as Sluice writes it: `key@start/end`, end exclusive
    /// (`inclusive` = 1 for windows whose Kafka Streams end is inclusive).
    static KStream<String, String> windowed(KTable<Windowed<String>, Long> counts, long inclusive) {
        return counts.toStream().map((w, n) -> KeyValue.pair(
                w.key() + "@" + w.window().start() + "/" + (w.window().end() + inclusive), text(n)));
    }

    /// The baseline: a bare consumer→producer loop, committing every
    /// `commitMs` after a flush (at-least-once).
    static void raw(String brokers, String input, String output, String group, long commitMs) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        c.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        try (var consumer = new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer());
                var producer = new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
            consumer.subscribe(List.of(input));
            long last = System.currentTimeMillis();
            while (true) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                    producer.send(new ProducerRecord<>(output, null, r.timestamp(), r.key(), r.value()));
                }
                if (System.currentTimeMillis() - last >= commitMs) {
                    producer.flush();
                    consumer.commitSync();
                    last = System.currentTimeMillis();
                }
            }
        }
    }
}
