<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

/** WeChat answered with a non-zero errcode that the retry policy could not overcome. */
class WeChatException extends \RuntimeException implements NotifyException
{
    use CarriesStatus;

    /** WeChat's errcode (e.g. 43101, 45103), from the outcome or the message. */
    public function getErrcode(): int
    {
        if ($this->getOutcome() !== null) {
            return $this->getOutcome()->errcode;
        }
        return preg_match('/errcode (-?\d+)/', $this->getMessage(), $m) ? (int) $m[1] : 0;
    }
}
