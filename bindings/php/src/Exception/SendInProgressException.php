<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

/**
 * Another send with this idempotency key is under way right now (a retried request
 * racing the first one, or the outbox's flush sending it): nothing was done by this
 * call, and that send decides. Not a delivery problem: answer "in progress" (WeChat
 * Pay: FAIL, so it notifies again later) and ask again for the key's outcome.
 * Status UNCERTAIN at the C boundary, outcome status "in_progress".
 */
class SendInProgressException extends \RuntimeException implements NotifyException
{
    use CarriesStatus;
}
