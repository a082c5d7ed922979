<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

/** WeChat answered with a non-zero errcode that the retry policy could not overcome. */
class WeChatException extends \RuntimeException implements NotifyException
{
    use CarriesStatus;

    /** @var array<string,mixed>|null */
    private ?array $answer = null;

    /**
     * WeChat's JSON answer, for a failed callApi.
     *
     * @param array<string,mixed> $answer
     */
    public function withAnswer(array $answer): static
    {
        $this->answer = $answer;
        return $this;
    }

    /** @return array<string,mixed>|null WeChat's answer to a failed callApi (errcode, errmsg, …) */
    public function getAnswer(): ?array
    {
        return $this->answer;
    }

    /** WeChat's errcode (e.g. 43101, 45103): from the send outcome, the callApi answer or the message. */
    public function getErrcode(): int
    {
        if ($this->getOutcome() !== null) {
            return $this->getOutcome()->errcode;
        }
        if (isset($this->answer['errcode'])) {
            return (int) $this->answer['errcode'];
        }
        return preg_match('/errcode (-?\d+)/', $this->getMessage(), $m) ? (int) $m[1] : 0;
    }
}
