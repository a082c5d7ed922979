<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

/** Reads what worker processes write until each closes its end, with one deadline for all. */
final class Pipes
{
    /**
     * @param array<int|string,resource> $streams
     * @return array<int|string,string> everything each stream carried, by the same key
     * @throws \RuntimeException naming the streams still open when the deadline passes
     */
    public static function readAll(array $streams, float $timeoutSecs): array
    {
        $deadline = microtime(true) + $timeoutSecs;
        $data = array_fill_keys(array_keys($streams), '');
        $open = $streams;
        foreach ($open as $s) {
            stream_set_blocking($s, false);
        }
        while ($open !== []) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                throw new \RuntimeException('no end of output from ' . implode(', ', array_keys($open)) . " within {$timeoutSecs} s");
            }
            $read = array_values($open);
            $write = $except = null;
            if (stream_select($read, $write, $except, (int) $left, (int) (($left - (int) $left) * 1e6)) === false) {
                throw new \RuntimeException('stream_select failed');
            }
            foreach ($read as $s) {
                $key = array_search($s, $open, true);
                $chunk = fread($s, 65536);
                if ($chunk === false || ($chunk === '' && feof($s))) {
                    fclose($s);
                    unset($open[$key]);
                    continue;
                }
                $data[$key] .= $chunk;
            }
        }
        return $data;
    }
}
